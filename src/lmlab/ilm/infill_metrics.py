"""Infill quality: exact match and character n-gram overlap between a predicted and the original span.

The lab's write-up (``000``, "Evaluation Metrics") defines the scores:

- **Top-1 accuracy**: exact match between the prediction and the masked text;
- **unigram recall / F1**: *character*-level overlap with the original;
- **bigram recall / F1**: overlap of *two-character sequences*.

Normalisation (the same for prediction and reference)
-----------------------------------------------------
Unicode NFKC, ``str.lower()``, outer whitespace stripped and inner whitespace runs collapsed
to one space (an ILM answer carries the space before the blank: ``" cereal"``). Exact match
compares the normalised strings (the lab's ``ilm_eval.py`` compares lower-cased strings).

Character overlap (``overlap``)
-------------------------------
Units are the characters of the normalised string (spaces of a multi-word span included) for
unigrams, and its adjacent character pairs for bigrams (``"cat"`` -> ``ca``, ``at``).

- ``set`` (default; the lab's ``ilm_eval.py``: ``set(word)`` and the set of its bigrams):
  overlap = number of distinct units in both; recall = overlap / distinct reference units,
  precision = overlap / distinct predicted units;
- ``multiset`` (ROUGE-style clipped counts): overlap = ``sum(min(count_pred, count_ref))``,
  recall = overlap / reference units, precision = overlap / predicted units.

F1 is the harmonic mean of precision and recall (0 when the overlap is 0). An empty
prediction scores 0 everywhere (an empty reference matched by an empty prediction scores 1).
A reference of one character has no two-character sequence: its bigram recall and F1 are its
exact match (the lab's script scores them 0 even for a correct answer, so ``I`` and ``a``
could never count).

Word-level scores (kept as ``word_*`` keys)
-------------------------------------------
lmlab's earlier definition, kept beside the write-up's: tokens = ``\\w+`` runs and single
non-space symbols of the normalised text; ``word_unigram_*`` is the clipped multiset overlap of
tokens, ``word_bigram_*`` the same over token bigrams padded with ``<s>``/``</s>`` (so a
one-word span is scored: its bigram recall is 1 only for an exact match, 0.5 if the prediction
starts or ends with it), ``word_top1_accuracy`` = identical token lists.

Aggregation
-----------
Micro over spans: a model's score on a CEFR level is the mean of the per-span values over
every masked span of every (text, sample) of that level; ``n`` is that number of spans.
The overall score (level ``all``) is the mean over all spans of the evaluation set.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Literal

__all__ = ["METRIC_NAMES", "WORD_METRIC_NAMES", "ALL_METRIC_NAMES", "Overlap", "normalize", "char_ngrams",
           "tokenize", "span_scores", "aggregate", "SpanScore"]

METRIC_NAMES = ("top1_accuracy", "unigram_recall", "unigram_f1", "bigram_recall", "bigram_f1")
WORD_METRIC_NAMES = tuple(f"word_{name}" for name in METRIC_NAMES)
ALL_METRIC_NAMES = METRIC_NAMES + WORD_METRIC_NAMES
Overlap = Literal["set", "multiset"]
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_SPACE_RE = re.compile(r"\s+")
BOS, EOS = "<s>", "</s>"


def normalize(text: str) -> str:
    """NFKC, lower case, whitespace stripped and collapsed (see the module doc)."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def char_ngrams(text: str, n: int) -> list[str]:
    """The character ``n``-grams of ``text`` in order (``n`` = 1: its characters)."""
    return [text[i:i + n] for i in range(len(text) - n + 1)]


def tokenize(text: str) -> list[str]:
    """Word-level tokens: ``\\w+`` runs and single non-space symbols of the normalised text."""
    return _TOKEN_RE.findall(normalize(text))


def _overlap_scores(pred: Sequence, ref: Sequence, overlap: Overlap = "multiset") -> tuple[float, float]:
    """(recall, F1) of the overlap of two unit lists, as sets or as clipped multisets."""
    if overlap == "set":
        pred, ref = list(set(pred)), list(set(ref))
    if not ref:
        return (1.0, 1.0) if not pred else (0.0, 0.0)
    if not pred:
        return 0.0, 0.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0, 0.0
    recall = common / len(ref)
    precision = common / len(pred)
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
    word_top1_accuracy: float
    word_unigram_recall: float
    word_unigram_f1: float
    word_bigram_recall: float
    word_bigram_f1: float

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _char_scores(pred: str, ref: str, overlap: Overlap) -> tuple[float, float, float, float, float]:
    exact = float(pred == ref)
    if not pred and ref:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    uni_r, uni_f = _overlap_scores(char_ngrams(pred, 1), char_ngrams(ref, 1), overlap)
    if len(ref) < 2:
        bi_r = bi_f = exact  # no two-character sequence to recall (module doc)
    else:
        bi_r, bi_f = _overlap_scores(char_ngrams(pred, 2), char_ngrams(ref, 2), overlap)
    return exact, uni_r, uni_f, bi_r, bi_f


def _word_scores(predicted: str, reference: str) -> tuple[float, float, float, float, float]:
    pred, ref = tokenize(predicted), tokenize(reference)
    if not pred and ref:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    uni_r, uni_f = _overlap_scores(pred, ref)
    bi_r, bi_f = _overlap_scores(_bigrams(pred), _bigrams(ref)) if ref else (uni_r, uni_f)
    return float(pred == ref), uni_r, uni_f, bi_r, bi_f


def span_scores(predicted: str, reference: str, overlap: Overlap = "set") -> SpanScore:
    """All per-span scores of one predicted span against the original span (module doc)."""
    if overlap not in ("set", "multiset"):
        raise ValueError(f"overlap: must be 'set' or 'multiset', got {overlap!r}")
    return SpanScore(*_char_scores(normalize(predicted), normalize(reference), overlap),
                     *_word_scores(predicted, reference))


def aggregate(scores: Iterable[SpanScore]) -> dict[str, float | int]:
    """Micro average of span scores (every name of :data:`ALL_METRIC_NAMES`) plus ``n``."""
    scores = list(scores)
    n = len(scores)
    out: dict[str, float | int] = {
        name: (sum(getattr(s, name) for s in scores) / n if n else 0.0) for name in ALL_METRIC_NAMES
    }
    out["n"] = n
    return out
