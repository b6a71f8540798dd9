"""Infill quality: exact match and n-gram overlap between a predicted and the original span.

Tokenization (the same for prediction and reference)
----------------------------------------------------
1. Unicode NFKC normalisation, then ``str.lower()``;
2. tokens = ``re.findall(r"\\w+|[^\\w\\s]", text)``: runs of word characters (letters,
   digits, underscore; Unicode-aware), and every other non-space character on its own
   (so ``"don't!"`` -> ``don``, ``'``, ``t``, ``!``). Whitespace only separates.

Per-span metrics
----------------
- ``top1_accuracy``: 1 if the two token lists are identical (case, spacing and Unicode
  form do not matter), else 0.
- ``unigram_recall`` / ``unigram_f1``: clipped multiset overlap of tokens (ROUGE-1 style):
  ``overlap = sum(min(count_pred(t), count_ref(t)))``, recall = overlap / #ref, precision =
  overlap / #pred, F1 = harmonic mean (0 when the overlap is 0).
- ``bigram_recall`` / ``bigram_f1``: the same over bigrams of the token list padded with a
  start and an end marker (``<s> w1 ... wn </s>``), so a span of n tokens has n+1 bigrams
  and a one-word span is scored too: its bigram recall is 1 only if the prediction is
  exactly that word, 0.5 if it starts or ends with it.
An empty prediction scores 0 everywhere (the reference span is never empty in evaluation;
if it is, an empty prediction matches it).

Aggregation
-----------
Micro over spans: a model's score on a CEFR level is the mean of the per-span values over
every masked span of every (text, sample) of that level; ``n`` is that number of spans.
The overall score (level ``all``) is the mean over all spans of the evaluation set, so
levels with more spans weigh more.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["METRIC_NAMES", "tokenize", "span_scores", "aggregate", "SpanScore"]

METRIC_NAMES = ("top1_accuracy", "unigram_recall", "unigram_f1", "bigram_recall", "bigram_f1")
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
BOS, EOS = "<s>", "</s>"


def tokenize(text: str) -> list[str]:
    """NFKC + lowercase, then ``\\w+`` runs and single non-space symbols (see the module doc)."""
    return _TOKEN_RE.findall(unicodedata.normalize("NFKC", text).lower())


def _overlap_scores(pred: Sequence, ref: Sequence) -> tuple[float, float]:
    """(recall, F1) of clipped multiset overlap."""
    if not ref:
        return (1.0, 1.0) if not pred else (0.0, 0.0)
    if not pred:
        return 0.0, 0.0
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0, 0.0
    recall = overlap / len(ref)
    precision = overlap / len(pred)
    return recall, 2 * precision * recall / (precision + recall)


def _bigrams(tokens: Sequence[str]) -> list[tuple[str, str]]:
    padded = [BOS, *tokens, EOS]
    return list(zip(padded, padded[1:]))


@dataclass(frozen=True)
class SpanScore:
    top1_accuracy: float
    unigram_recall: float
    unigram_f1: float
    bigram_recall: float
    bigram_f1: float

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in METRIC_NAMES}


def span_scores(predicted: str, reference: str) -> SpanScore:
    """All per-span metrics of one predicted span against the original span."""
    pred, ref = tokenize(predicted), tokenize(reference)
    if not pred and ref:
        return SpanScore(0.0, 0.0, 0.0, 0.0, 0.0)
    uni_r, uni_f = _overlap_scores(pred, ref)
    bi_r, bi_f = _overlap_scores(_bigrams(pred), _bigrams(ref)) if ref else (uni_r, uni_f)
    return SpanScore(float(pred == ref), uni_r, uni_f, bi_r, bi_f)


def aggregate(scores: Iterable[SpanScore]) -> dict[str, float | int]:
    """Micro average of span scores plus ``n`` (all zeros and n=0 for no spans)."""
    scores = list(scores)
    n = len(scores)
    out: dict[str, float | int] = {
        name: (sum(getattr(s, name) for s in scores) / n if n else 0.0) for name in METRIC_NAMES
    }
    out["n"] = n
    return out
