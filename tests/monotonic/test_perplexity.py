"""lmlab.monotonic.perplexity: summed NLL over exactly the scored tokens."""

from __future__ import annotations

import math

import pytest
import torch

from lmlab.errors import InputError
from lmlab.monotonic.perplexity import score_texts, token_nll

TEXTS = ["The old bridge over the river was rebuilt in the spring.", "Shares fell.", "A small town on the coast."]


def test_perplexity_equals_exp_of_hf_loss_on_one_unpadded_sequence(tiny_gpt2, tiny_tokenizer):
    scores = score_texts(tiny_gpt2, tiny_tokenizer, TEXTS[:1], max_length=64)
    ids = torch.tensor([tiny_tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        loss = tiny_gpt2(input_ids=ids, labels=ids).loss
    assert scores.tokens == (ids.size(1) - 1,)
    assert scores.ppl == pytest.approx(math.exp(float(loss)), rel=1e-5)


def test_padding_does_not_change_the_scores(tiny_gpt2, tiny_tokenizer):
    batched = score_texts(tiny_gpt2, tiny_tokenizer, TEXTS, max_length=64, batch_size=3)
    alone = [score_texts(tiny_gpt2, tiny_tokenizer, [t], max_length=64) for t in TEXTS]
    assert batched.tokens == tuple(a.tokens[0] for a in alone)
    assert batched.nll == pytest.approx([a.nll[0] for a in alone], rel=1e-4)
    pooled = sum(a.nll[0] for a in alone) / sum(a.tokens[0] for a in alone)
    assert batched.mean_nll == pytest.approx(pooled, rel=1e-4)


def test_truncation_limits_the_scored_tokens(tiny_gpt2, tiny_tokenizer):
    assert score_texts(tiny_gpt2, tiny_tokenizer, TEXTS[:1], max_length=5).tokens == (4,)


def test_token_nll_ignores_masked_labels():
    logits = torch.zeros(1, 4, 3)
    nll = token_nll(logits, torch.tensor([[0, 1, -100, 2]]))
    assert nll[0].tolist() == pytest.approx([math.log(3), 0.0, math.log(3)])


def test_empty_input_is_an_input_error(tiny_gpt2, tiny_tokenizer):
    with pytest.raises(InputError, match="no texts"):
        score_texts(tiny_gpt2, tiny_tokenizer, [], max_length=8)
