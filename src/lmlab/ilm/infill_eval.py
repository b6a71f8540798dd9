"""Infill evaluation: mask test texts, let each model fill them, score by model and CEFR level.

This is the lab's original ``ilm_eval.py`` as a library call. Steps:

1. Read a CSV with a text and a CEFR column (``id`` optional); keep up to ``limit`` texts
   per CEFR level (a seeded sample per level, kept in file order; 0 = all), so that rare
   levels get as many items as frequent ones, and cut each text to ``max_chars`` characters
   at the last whitespace before the limit.
2. Mask each text ``samples_per_text`` times with an RNG seeded by ``(seed, text id,
   sample)`` (so a text's masks do not depend on which other texts are selected):

   - ``human-tokens``: ``n_masks`` distinct whole words (regex ``\\w+(?:['’-]\\w+)*``),
     chosen uniformly, each a WORD span (adjacent words may both be masked);
   - ``random``: ``n_masks`` n-gram spans of 1..``max_ngram`` words (uniform length),
     placed uniformly with at least one unmasked word between two spans; 1-word spans are
     WORD spans, longer ones NGRAM spans (covering the text between their first and last
     word).

   A text with too few words for the requested masks is skipped and counted
   (``skipped.too_few_words``); a sample identical to an earlier sample of the same text is
   dropped and counted (``skipped.duplicate_sample``).
3. Every model fills every (text, sample) item; every span is scored with
   :mod:`lmlab.ilm.infill_metrics` (the write-up's character-level scores, plus the word-level
   ``word_*`` ones; micro average over spans, per CEFR level and overall). An ILM answer that
   was still open when the token budget ran out (no ``<|endofinfill|>``) is scored as
   generated and counted (``n_unterminated``; ``unterminated: drop`` = the reference's reading,
   which drops it and scores an empty answer).

Outputs (see :func:`write_outputs`): a report shaped like the original's output
(``config``, ``results.overall``, ``results.by_cefr`` with every score and the counts
``n_unterminated``/``n_empty``; ``diagnostics`` per model: distinct and most common
predictions, and how often two models predict the same string), the flat metrics file
``<model>.<level>.{top1_accuracy,unigram_recall,unigram_f1,bigram_recall,bigram_f1,n}``
(level ``all`` = overall; the contract keys only), and one JSONL line per (model, item) with
the context, the original and the predicted spans.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab.errors import InputError
from lmlab.ilm.format import MaskType, Span, mask_document
from lmlab.ilm.infill_metrics import METRIC_NAMES, aggregate, normalize, span_scores
from lmlab.ilm.infillers import InfillOptions, make_infiller
from lmlab.ilm.params import InfillEvalParams  # moved there (no torch) for the params check; re-exported

logger = logging.getLogger(__name__)

__all__ = ["InfillEvalParams", "EvalText", "EvalItem", "read_eval_texts", "mask_text", "build_items",
           "run_infill_eval", "write_outputs"]

WORD_RE = re.compile(r"\w+(?:['’-]\w+)*")


@dataclass(frozen=True)
class EvalText:
    text_id: str
    cefr: str
    text: str


@dataclass(frozen=True)
class EvalItem:
    text_id: str
    cefr: str
    sample: int
    doc: str
    spans: tuple[Span, ...]

    @property
    def answers(self) -> list[str]:
        return [self.doc[o:o + n] for _, o, n in self.spans]


def read_eval_texts(path: str | Path, text_column: str = "text", cefr_column: str = "cefr",
                    id_column: str = "id") -> list[EvalText]:
    """Rows of the evaluation CSV (empty texts dropped); clear errors for missing columns or no rows."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError("the evaluation CSV does not exist.", path=path, hint="run the ILM split stage first.")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            from lmlab.ilm.splitting import check_encoding

            try:
                check_encoding(path, "utf-8")  # finds the bad byte's line and column
            except InputError as bad:
                raise InputError(bad.what, path=path, line=bad.line, column=bad.column,
                                 hint="re-encode the CSV as UTF-8.") from exc
        raise InputError(f"cannot read the CSV ({exc.__class__.__name__}: {exc}).", path=path) from exc
    missing = [c for c in (text_column, cefr_column) if c not in frame.columns]
    if missing:
        raise InputError(f"column(s) {missing} not found (columns: {list(frame.columns)}).", path=path,
                         key="text_column/cefr_column", hint="name the CSV's text and CEFR columns.")
    ids = frame[id_column] if id_column in frame.columns else [str(i) for i in range(len(frame))]
    texts = [EvalText(str(i), c.strip(), t) for i, c, t in zip(ids, frame[cefr_column], frame[text_column])
             if t.strip()]
    if not texts:
        raise InputError("the evaluation CSV has no non-empty text (empty test split).", path=path,
                         hint="check the split stage's output or point test_csv at another file.")
    return texts


def _truncate(text: str, max_chars: int) -> str:
    text = text.strip()
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars + 1)
    return text[: cut if cut > 0 else max_chars].rstrip()


def mask_text(text: str, masking: str, n_masks: int, max_ngram: int, rng: random.Random) -> tuple[Span, ...] | None:
    """Spans for one sample, left to right, or None when the text has too few words."""
    words = [(m.start(), m.end()) for m in WORD_RE.finditer(text)]
    if masking == "human-tokens":
        if len(words) < n_masks:
            return None
        chosen = sorted(rng.sample(range(len(words)), n_masks))
        return tuple((int(MaskType.WORD), words[i][0], words[i][1] - words[i][0]) for i in chosen)
    lengths = [rng.randint(1, max_ngram) for _ in range(n_masks)]
    if sum(lengths) + n_masks - 1 > len(words):
        lengths = [1] * n_masks
    free = len(words) - sum(lengths) - (n_masks - 1)
    if free < 0:
        return None
    bars = sorted(rng.sample(range(free + n_masks), n_masks))
    gaps = [bars[0]] + [bars[i] - bars[i - 1] - 1 for i in range(1, n_masks)]
    spans, cursor = [], 0
    for i, (gap, length) in enumerate(zip(gaps, lengths)):
        start = cursor + gap + (1 if i else 0)
        first, last = words[start], words[start + length - 1]
        kind = MaskType.WORD if length == 1 else MaskType.NGRAM
        spans.append((int(kind), first[0], last[1] - first[0]))
        cursor = start + length
    return tuple(spans)


def build_items(texts: Sequence[EvalText], params: InfillEvalParams) -> tuple[list[EvalItem], dict[str, int]]:
    """Select, truncate and mask the texts; return the items and the counts of what was skipped."""
    by_level: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        by_level.setdefault(text.cefr, []).append(index)
    keep: list[int] = []
    for level in sorted(by_level):
        indices = by_level[level]
        if params.limit and len(indices) > params.limit:
            indices = random.Random(f"{params.seed}:{level}").sample(indices, params.limit)
        keep.extend(indices)
    selected = [texts[i] for i in sorted(keep)]
    counts: Counter[str] = Counter(texts_selected=len(selected))
    items: list[EvalItem] = []
    for text in selected:
        doc = _truncate(text.text, params.max_chars)
        counts["truncated_texts"] += doc != text.text.strip()
        seen: set[tuple[Span, ...]] = set()
        for sample in range(params.samples_per_text):
            rng = random.Random(f"{params.seed}:{text.text_id}:{sample}")
            spans = mask_text(doc, params.masking, params.n_masks, params.max_ngram, rng)
            if spans is None:
                counts["too_few_words"] += 1
                break
            if spans in seen:
                counts["duplicate_sample"] += 1
                continue
            seen.add(spans)
            items.append(EvalItem(text.text_id, text.cefr, sample, doc, spans))
    if counts["too_few_words"]:
        logger.warning("skipped %d text(s) with fewer words than %d mask(s)", counts["too_few_words"], params.n_masks)
    counts["items"] = len(items)
    return items, dict(counts)


def _score(items: Sequence[EvalItem], predictions: Sequence[Sequence[str]], unterminated: Sequence[Sequence[bool]],
           overlap: str) -> tuple[dict, dict]:
    """``(overall, by_level)``: every score's micro mean, ``n``, ``n_unterminated`` and ``n_empty``."""
    by_level: dict[str, list] = {}
    flags: dict[str, list[tuple[bool, bool]]] = {}
    for item, preds, open_ in zip(items, predictions, unterminated):
        by_level.setdefault(item.cefr, []).extend(span_scores(p, a, overlap) for p, a in zip(preds, item.answers))
        flags.setdefault(item.cefr, []).extend((u, not normalize(p)) for p, u in zip(preds, open_))

    def summary(scores: list, level_flags: list[tuple[bool, bool]]) -> dict[str, float | int]:
        return {**aggregate(scores), "n_unterminated": sum(u for u, _ in level_flags),
                "n_empty": sum(e for _, e in level_flags)}

    overall = summary([s for level in by_level.values() for s in level], [f for level in flags.values() for f in level])
    return overall, {level: summary(by_level[level], flags[level]) for level in sorted(by_level)}


def _diagnostics(predictions: Mapping[str, Sequence[Sequence[str]]], span_f1: Mapping[str, Sequence[float]],
                 seed: int) -> dict[str, Any]:
    """Can the models be told apart? (the report's ``diagnostics``)

    Per model: distinct and most common (normalised) predictions. Per pair of models ``a|b``:
    the share of spans where both predicted the same string (``identical_predictions``), and
    the difference of their character ``unigram_f1`` (a minus b) with a 95% bootstrap interval
    paired over spans (``unigram_f1_difference``; ``separated`` when it excludes 0).
    """
    import numpy as np

    from lmlab.statistics import bootstrap_ci

    flat = {name: [normalize(p) for preds in rows for p in preds] for name, rows in predictions.items()}
    out: dict[str, Any] = {}
    for name, preds in flat.items():
        common = Counter(preds).most_common(1)
        out[name] = {"distinct_predictions": len(set(preds)),
                     "most_common_prediction": {"text": common[0][0], "count": common[0][1]} if common else None}
    pairs = [(a, b) for i, a in enumerate(flat) for b in list(flat)[i + 1:]]
    out["identical_predictions"] = {f"{a}|{b}": sum(x == y for x, y in zip(flat[a], flat[b])) / max(1, len(flat[a]))
                                    for a, b in pairs}
    differences = {}
    for a, b in pairs:
        if len(span_f1[a]) < 2:
            continue
        ci = bootstrap_ci([np.asarray(span_f1[a]) - np.asarray(span_f1[b])], lambda d: d.mean(axis=-1),
                          n_resamples=1000, seed=seed)
        differences[f"{a}|{b}"] = {"estimate": ci.estimate, "low": ci.low, "high": ci.high,
                                   "separated": bool(ci.low > 0 or ci.high < 0)}
    out["unigram_f1_difference"] = differences
    return out


def run_infill_eval(params: InfillEvalParams) -> dict[str, Any]:
    """Evaluate every model of ``params.models``; return the report (see :func:`write_outputs`).

    ``params.threads > 0`` sets torch's intra-op thread count for the process: small models
    decode several times faster single-threaded on a busy CPU than with spinning OpenMP threads.
    """
    if params.threads:
        from lmlab.device import limit_cpu_threads

        limit_cpu_threads(params.threads)
    texts = read_eval_texts(params.test_csv, params.text_column, params.cefr_column, params.id_column)
    items, counts = build_items(texts, params)
    if not items:
        raise InputError(f"no text has enough words for {params.n_masks} mask(s) ({counts}).",
                         path=params.test_csv, key="n_masks", hint="lower n_masks or raise max_chars.")
    options = InfillOptions(decoding=params.decoding, top_p=params.top_p, seed=params.seed,
                            max_new_tokens=params.max_new_tokens, batch_size=params.batch_size, device=params.device,
                            reference_tokenizer=params.reference_tokenizer,
                            keep_unterminated=params.unterminated == "keep")
    overall, by_cefr, all_predictions, span_f1, rows = {}, {}, {}, {}, []
    pairs = [(item.doc, item.spans) for item in items]
    for name, spec in params.models.items():
        infiller = make_infiller(spec, options)
        start = time.perf_counter()
        predictions = infiller.infill(pairs)
        seconds = time.perf_counter() - start
        logger.info("%s (%s): %d items in %.2f s (%.1f items/s)", name, spec, len(items), seconds,
                    len(items) / max(seconds, 1e-9))
        unterminated = getattr(infiller, "last_unterminated", None) or [[False] * len(p) for p in predictions]
        overall[name], by_cefr[name] = _score(items, predictions, unterminated, params.overlap)
        all_predictions[name] = predictions
        span_f1[name] = [span_scores(p, a, params.overlap).unigram_f1
                         for item, preds in zip(items, predictions) for p, a in zip(preds, item.answers)]
        if overall[name]["n_unterminated"]:
            logger.warning("%s: %d of %d answers had no <|endofinfill|> within max_new_tokens (%d): %s", name,
                           overall[name]["n_unterminated"], overall[name]["n"], params.max_new_tokens,
                           "scored as generated" if params.unterminated == "keep" else "dropped (scored empty)")
        if overall[name]["n_empty"]:
            logger.warning("%s: %d of %d predicted spans are empty", name, overall[name]["n_empty"], overall[name]["n"])
        for item, preds, open_ in zip(items, predictions, unterminated):
            rows.append({"model": name, "id": item.text_id, "cefr": item.cefr, "sample": item.sample,
                         "context": mask_document(item.doc, item.spans)[0], "spans": [list(s) for s in item.spans],
                         "answers": item.answers, "predictions": list(preds), "unterminated": list(open_)})
    from lmlab.config import params_to_dict

    config = {**params_to_dict(params), "counts": counts}
    return {"config": config, "results": {"overall": overall, "by_cefr": by_cefr},
            "diagnostics": _diagnostics(all_predictions, span_f1, params.seed), "predictions": rows}


CONTRACT_KEYS = (*METRIC_NAMES, "n")


def metrics_view(report: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float | int]]]:
    """``<model>.all.<metric>``: the contract's keys of every model over all levels (``results.overall``).

    The per-CEFR-level grid (``results.by_cefr.<model>.<level>``), the word-level scores and the counts
    stay in the report: 6 models x 6 levels x 6 keys made `dvc metrics show` ~200 columns wider
    (issue 17), while a reviewer's `dvc metrics diff` needs only the overall scores.
    """
    results = report["results"]
    return {model: {"all": {key: results["overall"][model][key] for key in CONTRACT_KEYS}}
            for model in results["overall"]}


def write_outputs(report: Mapping[str, Any], out_json: str | Path, metrics_json: str | Path,
                  predictions_jsonl: str | Path) -> None:
    """Write the report (without predictions), the contract metrics and the predictions, atomically.

    The report's word-level scores, counts and ``diagnostics`` stay out of the contract metrics.
    """
    import json

    from lmlab.artifacts import atomic_write_json, atomic_write_text

    atomic_write_json(out_json, {key: report[key] for key in ("config", "results", "diagnostics") if key in report})
    atomic_write_json(metrics_json, metrics_view(report))
    atomic_write_text(predictions_jsonl, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                                                 for r in report["predictions"]))
