"""ILM hierarchical masking (Donahue et al. 2020), fast and deterministic.

The sampling is the reference's ``MaskHierarchical.mask`` (``ilm/mask/hierarchical.py``):
top down, a document is masked with probability ``p_document``; otherwise each paragraph
with ``p_paragraph``; otherwise each of its sentences with ``p_sentence``; otherwise, left
to right over the sentence's words, a word is hit with ``p_word``, and a hit becomes an
n-gram with probability ``ngram_p`` (length uniform in ``1..min(words left in the sentence,
ngram_max_length)``) or else a single word. Masked units are not descended into, so spans
never overlap and come out left to right. ``create_ilm_examples.py``'s loop is kept too:
``examples_per_document`` examples, each drawn up to ``max_retries`` times until it is
valid (a zero-length DOCUMENT span of an empty document is not) and, with
``unique_examples``, not already taken for this document.

Two things differ from the reference's code, not from its distribution:

* the per-word (and per-sentence, per-paragraph) Bernoulli trials are drawn as geometric
  gaps between hits (one ``log`` per hit instead of one ``random()`` per word): trials on
  the examined units are i.i.d., so the gaps are geometric and the sampled masks have
  exactly the reference's distribution (``tests/test_masking.py`` compares both);
* each document has its own ``random.Random`` seeded from ``(seed, split, document
  index)``, so the output does not depend on how documents are spread over processes.

Segmentation (:mod:`lmlab.ilm.segmentation`) runs once per document. Whole split files are
masked in parallel, streamed in and out, by :mod:`lmlab.ilm.masked_splits`.
"""

from __future__ import annotations

import collections
import logging
import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lmlab.ilm.format import MaskType, Span, mask_document
from lmlab.ilm.params import (  # moved there (no nltk) for the params check; re-exported
    ExamplesPerSplit,
    MaskParams,
)
from lmlab.ilm.segmentation import DocSegments, SegmentationError, Segmenter

logger = logging.getLogger(__name__)

__all__ = [
    "ExamplesPerSplit",
    "MaskParams",
    "MaskStats",
    "make_sampler",
    "sample_spans",
    "reference_mask",
    "mask_document_examples",
    "mask_documents",
    "document_rng",
    "format_preview",
]

DOCUMENT, PARAGRAPH, SENTENCE, NGRAM, WORD = (int(t) for t in MaskType)
_NEVER = sys.maxsize


# -- sampling ----------------------------------------------------------------


def _gap_function(rand: Callable[[], float], p: float) -> Callable[[], int]:
    """Failures before the next hit of i.i.d. Bernoulli(p) trials, drawn at once: Geometric(p).

    P(int(log(U) / log(1-p)) >= g) = P(U <= (1-p)^g) = (1-p)^g for U = 1 - random() in (0, 1].
    """
    if p <= 0.0:
        return lambda: _NEVER
    if p >= 1.0:
        return lambda: 0
    scale, log = 1.0 / math.log1p(-p), math.log
    return lambda: int(log(1.0 - rand()) * scale)


def make_sampler(segments: DocSegments, rng: random.Random, params: MaskParams) -> Callable[[], tuple[Span, ...]]:
    """A function drawing hierarchical masks of one document (set up once, called per sample).

    Each call returns spans ``(type, offset, length)``, left to right. Gaps count the failed
    trials before the next hit on the units actually examined (paragraphs of an unmasked
    document, sentences of unmasked paragraphs, words of unmasked sentences not covered by
    an n-gram), which is the reference's one trial per unit in distribution.
    """
    rand = rng.random
    p_doc, ngram_p, max_len = params.p_document, params.ngram_p, params.ngram_max_length
    paragraph_gap, sentence_gap, word_gap = (
        _gap_function(rand, params.p_paragraph), _gap_function(rand, params.p_sentence),
        _gap_function(rand, params.p_word),
    )
    paragraphs, sentences = segments.paragraphs, segments.sentences
    offsets, ends, sentence_ends = segments.word_offsets, segments.word_ends, segments.word_sentence_ends
    document_span = ((DOCUMENT, 0, segments.length),)

    def words(w: int, w_end: int, w_gap: int, append: Callable[[Span], None]) -> int:
        # Word trials over the flat word range [w, w_end) of consecutive unmasked sentences.
        while w + w_gap < w_end:
            w += w_gap
            if ngram_p > 0.0 and rand() < ngram_p:
                k = 1 + int(rand() * min(sentence_ends[w] - w, max_len))
                append((NGRAM, offsets[w], ends[w + k - 1] - offsets[w]))
                w += k
            else:
                append((WORD, offsets[w], ends[w] - offsets[w]))
                w += 1
            w_gap = word_gap()
        return w_gap - (w_end - w)

    def sample() -> tuple[Span, ...]:
        if p_doc > 0.0 and rand() < p_doc:
            return document_span
        spans: list[Span] = []
        append = spans.append
        p_gap, s_gap, w_gap = paragraph_gap(), sentence_gap(), word_gap()
        for p_off, p_len, s_lo, s_hi in paragraphs:
            if p_gap == 0:
                append((PARAGRAPH, p_off, p_len))
                p_gap = paragraph_gap()
                continue
            p_gap -= 1
            j = s_lo
            while j + s_gap < s_hi:
                hit = j + s_gap
                w_gap = words(sentences[j][2], sentences[hit][2], w_gap, append)
                append((SENTENCE, sentences[hit][0], sentences[hit][1]))
                j = hit + 1
                s_gap = sentence_gap()
            s_gap -= s_hi - j
            if j < s_hi:
                w_gap = words(sentences[j][2], sentences[s_hi - 1][3], w_gap, append)
        return tuple(spans)

    return sample


def sample_spans(segments: DocSegments, rng: random.Random, params: MaskParams) -> tuple[Span, ...]:
    """One hierarchical mask of a document (see :func:`make_sampler`)."""
    return make_sampler(segments, rng, params)()


def reference_mask(tree: tuple, rng: random.Random, params: MaskParams) -> list[Span]:
    """The reference's ``MaskHierarchical.mask`` on its nested offsets tree (one trial per unit).

    Kept as the oracle of :func:`sample_spans` (tests) and for the benchmark's faithful side.
    """

    def trial(p: float) -> bool:
        return p > 0 and rng.random() < p

    spans: list[Span] = []
    doc_off, doc_len, paragraphs = tree
    if trial(params.p_document):
        return [(DOCUMENT, doc_off, doc_len)]
    for p_off, p_len, sentences in paragraphs:
        if trial(params.p_paragraph):
            spans.append((PARAGRAPH, p_off, p_len))
            continue
        for s_off, s_len, words in sentences:
            if trial(params.p_sentence):
                spans.append((SENTENCE, s_off, s_len))
                continue
            w_i = 0
            while w_i < len(words):
                w_off, w_len = words[w_i]
                if trial(params.p_word):
                    if trial(params.ngram_p):
                        k = rng.randint(1, min(len(words) - w_i, params.ngram_max_length))
                        last_off, last_len = words[w_i + k - 1]
                        spans.append((NGRAM, w_off, last_off + last_len - w_off))
                        w_i += k
                    else:
                        spans.append((WORD, w_off, w_len))
                        w_i += 1
                else:
                    w_i += 1
    return spans


# -- statistics ----------------------------------------------------------------


@dataclass
class MaskStats:
    """Counts summed over documents; :meth:`summary` gives the rates."""

    documents: int = 0
    skipped_documents: int = 0
    examples: int = 0
    empty_examples: int = 0
    missing_examples: int = 0
    spans: int = 0
    adjacent_span_pairs: int = 0
    chars: int = 0
    masked_chars: int = 0
    span_types: list[int] = field(default_factory=lambda: [0] * len(MaskType))
    span_type_chars: list[int] = field(default_factory=lambda: [0] * len(MaskType))
    retries: collections.Counter = field(default_factory=collections.Counter)

    def add_example(self, doc_len: int, spans: Sequence[Span]) -> None:
        self.examples += 1
        self.chars += doc_len
        self.spans += len(spans)
        if not spans:
            self.empty_examples += 1
            return
        types, type_chars = self.span_types, self.span_type_chars
        previous_end = -1
        adjacent = masked = 0
        for mask_type, offset, length in spans:
            types[mask_type] += 1
            type_chars[mask_type] += length
            masked += length
            adjacent += offset == previous_end
            previous_end = offset + length
        self.masked_chars += masked
        self.adjacent_span_pairs += adjacent

    def merge(self, other: MaskStats) -> None:
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(mine, collections.Counter):
                mine.update(value)
            elif isinstance(mine, list):
                setattr(self, name, [a + b for a, b in zip(mine, value)])
            else:
                setattr(self, name, mine + value)

    def summary(self) -> dict[str, Any]:
        """JSON-ready rates: char mask rate, span-type mix (share of spans and of chars) ..."""
        names = {int(t): t.name.lower() for t in MaskType}
        return {
            "documents": self.documents,
            "skipped_documents": self.skipped_documents,
            "examples": self.examples,
            "examples_per_document": self.examples / self.documents if self.documents else 0.0,
            "missing_examples": self.missing_examples,
            "empty_examples": self.empty_examples,
            "empty_example_rate": self.empty_examples / self.examples if self.examples else 0.0,
            "spans": self.spans,
            "spans_per_example": self.spans / self.examples if self.examples else 0.0,
            "adjacent_span_pairs": self.adjacent_span_pairs,
            "mask_rate_chars": self.masked_chars / self.chars if self.chars else 0.0,
            "span_type_share": {names[t]: self.span_types[t] / self.spans if self.spans else 0.0 for t in names},
            "span_type_char_share": {
                names[t]: self.span_type_chars[t] / self.chars if self.chars else 0.0 for t in names
            },
            "retries": {reason: self.retries[reason] for reason in ("not_unique", "invalid_bounds")},
        }


# -- one document ----------------------------------------------------------------


_RNG_LABEL = "lmlab.masking"
"""Part of every document's RNG seed: a frozen constant, not the module's path. It was the module
path before the family layout moved the module; renaming it would change every committed mask."""


def document_rng(seed: int, stream: str, index: int) -> random.Random:
    """The RNG of document ``index`` of ``stream`` (e.g. the split name); stable across processes."""
    return random.Random(f"{_RNG_LABEL}:{seed}:{stream}:{index}")


def mask_document_examples(
    doc: str, segments: DocSegments, rng: random.Random, params: MaskParams, n_examples: int, stats: MaskStats
) -> list[list[Span]]:
    """``create_ilm_examples.randomly_mask_document``: up to ``n_examples`` accepted masks."""
    examples: list[list[Span]] = []
    seen: set[tuple[Span, ...]] = set()
    sample = make_sampler(segments, rng, params)
    for _ in range(n_examples):
        for _attempt in range(params.max_retries):
            spans = sample()
            # Only a DOCUMENT span (then alone) can be empty: the reference's bounds check.
            if spans and spans[0][2] <= 0:
                stats.retries["invalid_bounds"] += 1
                continue
            if params.unique_examples and spans in seen:
                stats.retries["not_unique"] += 1
                continue
            seen.add(spans)
            examples.append(list(spans))
            stats.add_example(len(doc), spans)
            break
        else:
            stats.missing_examples += 1
    return examples


def mask_documents(
    docs: Sequence[str], first_index: int, segmenter: Segmenter, params: MaskParams, seed: int, stream: str,
    n_examples: int,
) -> tuple[list[tuple[str, list[list[Span]]]], MaskStats]:
    """Mask consecutive documents ``first_index, first_index + 1, ...`` of ``stream``."""
    stats = MaskStats()
    out = []
    for index, doc in enumerate(docs, start=first_index):
        stats.documents += 1
        try:
            segments = segmenter.segment(doc)
        except SegmentationError as exc:
            logger.debug("document %d skipped: %s", index, exc)
            stats.skipped_documents += 1
            out.append((doc, []))
            continue
        rng = document_rng(seed, stream, index)
        out.append((doc, mask_document_examples(doc, segments, rng, params, n_examples, stats)))
    return out, stats


# -- preview -------------------------------------------------------------------


def format_preview(items: Sequence[tuple[str, list[list[Span]]]], n: int = 5, seed: int = 0) -> str:
    """ORIGINAL / CONTEXT / ANSWERS of one random example of ``n`` random documents."""
    rng = random.Random(seed)
    candidates = [i for i, (_, examples) in enumerate(items) if examples]
    blocks = []
    for index in sorted(rng.sample(candidates, min(n, len(candidates)))):
        doc, examples = items[index]
        which = rng.randrange(len(examples))
        context, answers = mask_document(doc, [tuple(span) for span in examples[which]])
        blocks.append(
            f"=== document {index}, example {which + 1}/{len(examples)} ===\n"
            f"ORIGINAL:\n{doc}\n\nCONTEXT:\n{context}\n\nANSWERS:\n"
            + "\n".join(f"  {i + 1}. {answer!r}" for i, answer in enumerate(answers))
        )
    return "\n\n".join(blocks) + ("\n" if blocks else "no examples to preview\n")
