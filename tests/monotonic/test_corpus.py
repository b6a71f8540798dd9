"""lmlab.monotonic.corpus: deterministic sample text, disjoint splits, fixed-length token examples."""

from __future__ import annotations

import pytest

from lmlab.errors import InputError
from lmlab.monotonic.corpus import (
    SplitParams,
    encode_fixed,
    generate_general_text,
    special_token_ids,
    split_texts,
)


def test_sample_text_is_deterministic_distinct_and_varied():
    docs = generate_general_text(300, seed=3)
    assert docs == generate_general_text(300, seed=3) and docs != generate_general_text(300, seed=4)
    assert len(set(docs)) == 300
    openings = {d.split()[1] for d in docs}
    assert len(openings) > 20  # many topics and templates, not one repeated paragraph


def test_splits_are_disjoint_deduplicated_and_seeded():
    texts = generate_general_text(200, seed=0)
    splits = split_texts(texts + texts[:50], SplitParams(), seed=0)
    sets = {k: set(v) for k, v in splits.items()}
    assert sum(len(v) for v in splits.values()) == 200
    assert not (sets["train"] & sets["test"]) and not (sets["train"] & sets["valid"]) and not (sets["valid"] & sets["test"])
    assert len(splits["test"]) == len(splits["valid"]) == 20
    assert split_texts(texts, SplitParams(), seed=0) == splits
    assert split_texts(texts, SplitParams(), seed=1)["test"] != splits["test"]


def test_empty_or_tiny_corpus_is_an_input_error():
    with pytest.raises(InputError, match="0 distinct texts"):
        split_texts([], SplitParams(), seed=0)
    with pytest.raises(InputError, match="at least 10"):
        split_texts(["short"] * 50 + [f"a long enough text number {i}" for i in range(5)], SplitParams(), seed=0)


def test_encode_fixed_keeps_long_texts_and_rejects_short_corpora(tiny_tokenizer):
    texts = ["word " * 30, "tiny", "more words here " * 10]
    ids = encode_fixed(tiny_tokenizer, texts, 12, limit=5, what="test")
    assert len(ids) == 2 and all(len(i) == 12 for i in ids)
    with pytest.raises(InputError, match="no HotFlip text has the 500 tokens"):
        encode_fixed(tiny_tokenizer, texts, 500, limit=5, what="HotFlip")


def test_special_token_ids_cover_eos_and_pad(tiny_tokenizer):
    ids = special_token_ids(tiny_tokenizer)
    assert tiny_tokenizer.eos_token_id in ids and tiny_tokenizer.pad_token_id in ids
