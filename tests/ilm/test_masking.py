"""Hierarchical ILM masking: the reference's statistics, validity, uniqueness, determinism."""

from __future__ import annotations

import random

import pytest

from lmlab.ilm.format import MaskType, validate_spans
from lmlab.ilm.masking import MaskParams, MaskStats, mask_documents, reference_mask, sample_spans
from lmlab.ilm.segmentation import Segmenter, reference_hierarchical_offsets

PARAMS = MaskParams()


@pytest.fixture(scope="module")
def segmenter(nltk_data) -> Segmenter:
    return Segmenter()


@pytest.fixture(scope="module")
def learner_docs() -> list[str]:
    from lmlab.ilm.corpus import generate_learner_corpus

    return [str(t).strip() for t in generate_learner_corpus(200, seed=7).text]


def _reference_loop(docs: list[str], params: MaskParams, n: int, seed: int) -> MaskStats:
    """create_ilm_examples' loop around the reference mask(), one global RNG, on NLTK's segmentation."""
    rng = random.Random(seed)
    stats = MaskStats()
    for doc in docs:
        tree = reference_hierarchical_offsets(doc)
        seen: set = set()
        stats.documents += 1
        for _ in range(n):
            for _attempt in range(params.max_retries):
                spans = tuple(reference_mask(tree, rng, params))
                if spans in seen:
                    stats.retries["not_unique"] += 1
                    continue
                seen.add(spans)
                stats.add_example(len(doc), spans)
                break
    return stats


def test_sampler_has_the_reference_distribution(segmenter: Segmenter, learner_docs: list[str]) -> None:
    """Single samples (no uniqueness), many per document: type mix and mask rate as the reference's."""
    ours, ref = MaskStats(), MaskStats()
    rng_ours, rng_ref = random.Random(1), random.Random(2)
    for doc in learner_docs[:40]:
        segments, tree = segmenter.segment(doc), reference_hierarchical_offsets(doc)
        for _ in range(150):
            ours.add_example(len(doc), sample_spans(segments, rng_ours, PARAMS))
            ref.add_example(len(doc), reference_mask(tree, rng_ref, PARAMS))
    a, b = ours.summary(), ref.summary()
    assert abs(a["mask_rate_chars"] - b["mask_rate_chars"]) < 0.01
    assert abs(a["spans_per_example"] - b["spans_per_example"]) < 0.05 * b["spans_per_example"]
    for name in ("document", "paragraph", "sentence", "ngram", "word"):
        assert abs(a["span_type_share"][name] - b["span_type_share"][name]) < 0.01, name


def test_statistics_match_the_reference_loop(segmenter: Segmenter, learner_docs: list[str]) -> None:
    items, stats = mask_documents(learner_docs, 0, segmenter, PARAMS, seed=0, stream="train", n_examples=16)
    ours, ref = stats.summary(), _reference_loop(learner_docs, PARAMS, 16, seed=0).summary()
    assert 0.11 < ours["mask_rate_chars"] < 0.17
    assert abs(ours["mask_rate_chars"] - ref["mask_rate_chars"]) < 0.01
    for name in ("document", "paragraph", "sentence", "ngram", "word"):
        assert abs(ours["span_type_share"][name] - ref["span_type_share"][name]) < 0.015, name
    assert ours["span_type_share"]["ngram"] > 0.35 and ours["span_type_share"]["word"] > 0.35
    assert stats.retries["not_unique"] > 0 and stats.skipped_documents == 0
    for doc, examples in items:
        assert len(examples) == 16
        assert len({tuple(e) for e in examples}) == 16  # unique per document
        assert sum(not e for e in examples) <= 1
        for example in examples:
            validate_spans(doc, example)  # typed, in range, left to right, no overlap
            assert all(isinstance(v, int) and not isinstance(v, MaskType) for span in example for v in span)


def test_determinism_and_seed(segmenter: Segmenter, learner_docs: list[str]) -> None:
    docs = learner_docs[:30]
    first, _ = mask_documents(docs, 0, segmenter, PARAMS, seed=5, stream="train", n_examples=4)
    again, _ = mask_documents(docs, 0, segmenter, PARAMS, seed=5, stream="train", n_examples=4)
    other, _ = mask_documents(docs, 0, segmenter, PARAMS, seed=6, stream="train", n_examples=4)
    assert first == again and first != other
    # A document's masks depend on its index, not on the chunk it was processed in.
    tail, _ = mask_documents(docs[10:], 10, segmenter, PARAMS, seed=5, stream="train", n_examples=4)
    assert tail == first[10:]


def test_empty_unlocatable_and_zero_probability_documents(segmenter: Segmenter) -> None:
    items, stats = mask_documents(["", "Ends with '' two apostrophes''.", "Hi there."], 0, segmenter, PARAMS, 0,
                                  "test", 4)
    assert items[0] == ("", [[]])  # only the empty example exists (DOCUMENT spans of "" are invalid)
    assert items[1][1] == [] and stats.skipped_documents == 1
    none = MaskParams(p_document=0, p_paragraph=0, p_sentence=0, p_word=0)
    items, stats = mask_documents(["A b c."], 0, segmenter, none, 0, "t", 3)
    assert items[0][1] == [[]] and stats.missing_examples == 2 and stats.retries["not_unique"] == 2 * 16
    always = MaskParams(p_document=1.0)
    items, _ = mask_documents(["A b c."], 0, segmenter, always, 0, "t", 2)
    assert items[0][1] == [[(0, 0, 6)]]


def test_span_type_counter_names() -> None:
    stats = MaskStats()
    stats.add_example(10, [(3, 0, 2), (4, 2, 3)])
    assert stats.summary()["adjacent_span_pairs"] == 1
    assert stats.summary()["span_type_share"]["ngram"] == 0.5
    assert stats.span_types == [0, 0, 0, 1, 1] and stats.span_type_chars == [0, 0, 0, 2, 3]
