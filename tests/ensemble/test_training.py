"""Prompt masking in the causal SFT examples/collator, seq2seq encoding, short training runs."""

from __future__ import annotations

import torch

from lmlab.ensemble.data import format_prompt
from lmlab.ensemble.training import (
    IGNORE_INDEX,
    CausalSFTCollator,
    encode_causal_example,
    encode_prompt,
    encode_seq2seq_example,
)

ROW = {"instruction": "Identify weird machine gadgets.", "input": "3.1 Jumps\nJMP skips to a label.",
       "output": "gadget_type: Control-Flow gadget; location: Section 3.1 Jumps; explanation: JMP skips rungs."}
ROW2 = {"instruction": "Find gadgets.", "input": "Short.", "output": "gadget_type: RW; location: a; explanation: b"}


def test_causal_labels_are_masked_exactly_on_the_prompt(tiny_tokenizer):
    ex = encode_causal_example(tiny_tokenizer, ROW, max_source=512, max_target=512)
    prompt = tiny_tokenizer(format_prompt(ROW["instruction"], ROW["input"]), add_special_tokens=False)["input_ids"]
    n = len(prompt)
    assert ex["input_ids"][:n] == prompt
    assert ex["labels"][:n] == [IGNORE_INDEX] * n
    assert all(lab != IGNORE_INDEX for lab in ex["labels"][n:])
    assert ex["labels"][n:] == ex["input_ids"][n:]
    assert ex["input_ids"][-1] == tiny_tokenizer.eos_token_id  # EOS appended and trained on
    assert tiny_tokenizer.decode(ex["input_ids"][n:-1]) == " " + ROW["output"]


def test_collator_pads_labels_with_ignore_index(tiny_tokenizer):
    exs = [encode_causal_example(tiny_tokenizer, r, 512, 512) for r in (ROW, ROW2)]
    batch = CausalSFTCollator(tiny_tokenizer.pad_token_id)(exs)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    for i, ex in enumerate(exs):
        n_prompt = ex["labels"].count(IGNORE_INDEX)
        length = len(ex["input_ids"])
        labels = batch["labels"][i].tolist()
        # -100 exactly on prompt tokens and on padding; the answer (with EOS) is kept.
        assert [j for j, v in enumerate(labels) if v == IGNORE_INDEX] == \
            list(range(n_prompt)) + list(range(length, batch["labels"].shape[1]))
        assert batch["attention_mask"][i].tolist() == [1] * length + [0] * (batch["labels"].shape[1] - length)
        assert (batch["input_ids"][i, length:] == tiny_tokenizer.pad_token_id).all()


def test_truncation_keeps_eos(tiny_tokenizer):
    ex = encode_causal_example(tiny_tokenizer, ROW, max_source=10, max_target=6)
    assert ex["labels"].count(IGNORE_INDEX) == 10
    assert len(ex["input_ids"]) == 16 and ex["input_ids"][-1] == tiny_tokenizer.eos_token_id
    assert len(encode_prompt(tiny_tokenizer, ROW["instruction"], ROW["input"], 7)) == 7


def test_seq2seq_example(tiny_tokenizer):
    ex = encode_seq2seq_example(tiny_tokenizer, ROW, max_source=512, max_target=512)
    assert ex["input_ids"][-1] == tiny_tokenizer.eos_token_id
    assert ex["labels"][-1] == tiny_tokenizer.eos_token_id
    assert IGNORE_INDEX not in ex["labels"]
    assert tiny_tokenizer.decode(ex["labels"][:-1]) == ROW["output"]
    assert torch.tensor(ex["attention_mask"]).sum() == len(ex["input_ids"])
