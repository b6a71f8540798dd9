"""Tokenizer training, special tokens, corpus readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmlab.errors import InputError
from lmlab.ilm.format import ILM_SPECIAL_TOKENS
from lmlab.tokenization import add_special_tokens, iter_corpus_texts, prepare_tokenizer, train_bpe_tokenizer


def test_bpe_is_deterministic_and_round_trips(tiny_texts: list[str]) -> None:
    a = train_bpe_tokenizer(tiny_texts, vocab_size=350)
    b = train_bpe_tokenizer(tiny_texts, vocab_size=350)
    assert a.get_vocab() == b.get_vocab()
    text = "I am agree with this opinion, although it's expensive."
    assert a.decode(a(text)["input_ids"]) == text
    assert a.pad_token_id != a.eos_token_id


def test_special_tokens_are_atomic_and_idempotent(tiny_texts: list[str]) -> None:
    tokenizer = train_bpe_tokenizer(tiny_texts, vocab_size=350)
    ids = add_special_tokens(tokenizer, ILM_SPECIAL_TOKENS)
    assert len(set(ids)) == len(ILM_SPECIAL_TOKENS)
    assert add_special_tokens(tokenizer, ILM_SPECIAL_TOKENS) == ids
    encoded = tokenizer("She ate<|infill_word|> for breakfast.<|startofinfill|>")["input_ids"]
    word_mask, start_infill = ids[ILM_SPECIAL_TOKENS.index("<|infill_word|>")], ids[0]
    assert encoded.count(word_mask) == 1 and encoded[-1] == start_infill


def test_prepare_tokenizer_real_model_path(tiny_model_dir: Path) -> None:
    tokenizer = prepare_tokenizer(str(tiny_model_dir), [], 0, ILM_SPECIAL_TOKENS, is_tiny=False)
    assert all(t in tokenizer.get_vocab() for t in ILM_SPECIAL_TOKENS)


def test_vocab_too_small_is_an_input_error() -> None:
    with pytest.raises(InputError, match="vocab_size"):
        train_bpe_tokenizer(["a"], vocab_size=100)


def test_iter_corpus_texts_reads_csv_jsonl_and_text(tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text('text,cefr\n"multi\nline",A1\nhello,B1\n')
    assert iter_corpus_texts(csv) == ["multi\nline", "hello"]
    with pytest.raises(InputError, match="column"):
        iter_corpus_texts(csv, ("body",))
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text(json.dumps({"conversations": [{"from": "human", "value": "hi"}], "n": 1}) + "\n")
    assert iter_corpus_texts(jsonl) == ["human", "hi"]
    txt = tmp_path / "c.txt"
    txt.write_text("a doc\n\n\nanother\n")
    assert iter_corpus_texts(txt) == ["a doc", "another"]


def test_prepare_tokenizer_passes_min_frequency_to_bpe():
    """`<family>.tokenizer.min_frequency` was once read and then ignored: a rarer-merge BPE must differ."""
    from lmlab.tokenization import prepare_tokenizer

    texts = ["the cat sat on the mat", "a dog ran in the park", "zebra xylophone quokka"] * 3
    common = prepare_tokenizer("tiny-gpt2", texts, 400, min_frequency=1)
    strict = prepare_tokenizer("tiny-gpt2", texts, 400, min_frequency=4)
    assert len(common) > len(strict)
