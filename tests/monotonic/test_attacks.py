"""lmlab.monotonic.attacks: UAT and HotFlip raise the target loss, skip special tokens, score the same tokens."""

from __future__ import annotations

import math

import pytest
import torch

from lmlab.modeling import ModelSpec, build_model
from lmlab.monotonic.attacks import (
    HotFlipParams,
    UATParams,
    allowed_token_mask,
    hotflip_attack,
    success,
    target_nll,
    uat_attack,
)
from lmlab.monotonic.corpus import special_token_ids


@pytest.fixture()
def attack_setup(tiny_tokenizer):
    """A tiny GPT-NeoX whose special-token embeddings are huge, so a first-order score would favour them."""
    model = build_model(ModelSpec("tiny-gpt-neox", n_layer=2, d_model=32, n_head=2, d_ff=64, max_positions=64),
                        tiny_tokenizer, seed=0).eval()
    model.requires_grad_(False)
    specials = special_token_ids(tiny_tokenizer)
    emb = model.get_input_embeddings().weight
    with torch.no_grad():
        emb[specials] = 50.0 * torch.randn(len(specials), emb.size(1), generator=torch.Generator().manual_seed(1))
    allowed = allowed_token_mask(emb.size(0), len(tiny_tokenizer), specials)
    gen = torch.Generator().manual_seed(0)
    texts = allowed.nonzero().flatten()[torch.randint(int(allowed.sum()), (12, 24), generator=gen)]
    return model, tiny_tokenizer, allowed, specials, texts


def test_allowed_mask_excludes_specials_and_embedding_padding():
    mask = allowed_token_mask(10, 8, [0, 3])
    assert mask.tolist() == [False, True, True, False, True, True, True, True, False, False]


def test_success_definitions_differ_as_documented():
    clean, attacked = torch.tensor([2.0, 4.0]), torch.tensor([2.2, 4.5])
    ok = success(clean, attacked, 0.15)
    assert ok["ppl_ratio"].tolist() == [math.expm1(0.2) > 0.15, math.expm1(0.5) > 0.15] == [True, True]
    assert ok["rel_nll"].tolist() == [False, False]  # 10% and 12.5% relative NLL


def test_clean_and_attacked_runs_score_the_same_target_tokens(attack_setup):
    model, tokenizer, _, _, texts = attack_setup
    sep, trigger, target = torch.tensor([tokenizer.eos_token_id]), texts[0, :5], texts[1]
    for prefix in (sep, torch.cat([sep, trigger])):
        seq = torch.cat([prefix, target])[None]
        labels = seq.clone()
        labels[:, :len(prefix)] = -100
        assert int((labels[:, 1:] != -100).sum()) == len(target)  # every target token, nothing else
        hf = model(input_ids=seq, labels=labels).loss
        assert float(target_nll(model, seq, len(target))[0]) == pytest.approx(float(hf), rel=1e-5)


def test_uat_raises_the_loss_and_never_uses_special_tokens(attack_setup):
    model, tokenizer, allowed, specials, texts = attack_setup
    params = UATParams(trigger_length=3, candidates=8, restarts=2, sweeps=2, target_tokens=24, grad_batch=4,
                       score_texts=12)
    result = uat_attack(model, texts, texts, allowed, tokenizer.eos_token_id, params, seed=0)
    assert len(result["trigger_ids"]) == 3 and not set(result["trigger_ids"]) & set(specials)
    assert all(not set(r["trigger_ids"]) & set(specials) for r in result["restarts"])
    assert result["attacked"].mean() > result["clean"].mean()
    again = uat_attack(model, texts, texts, allowed, tokenizer.eos_token_id, params, seed=0)
    assert again["trigger_ids"] == result["trigger_ids"]  # seeded


@pytest.mark.parametrize("mode", ["iterative", "oneshot"])
def test_hotflip_flips_context_only_never_specials(mode, attack_setup):
    model, _, allowed, specials, texts = attack_setup
    params = HotFlipParams(mode=mode, n_texts=12, context_tokens=12, target_tokens=12, max_flips=3, candidates=6,
                           early_stop=False)
    ctx, tgt = texts[:, :12], texts[:, 12:]
    result = hotflip_attack(model, ctx, tgt, allowed, params, threshold=0.15)
    changed = result["contexts"] != ctx
    assert changed.any() and (changed.sum(dim=1) <= 3).all()
    assert not set(result["contexts"][changed].tolist()) & set(specials)
    for row, flips in enumerate(result["flips"]):
        assert len(flips) == int(changed[row].sum())
        assert all(0 <= f["position"] < 12 and f["new"] not in specials for f in flips)
    recomputed = target_nll(model, torch.cat([result["contexts"], tgt], 1), 12)
    assert torch.allclose(recomputed, result["attacked"], atol=1e-5)  # the target is what is scored
    if mode == "iterative":
        assert (result["attacked"] >= result["clean"]).all() and (result["attacked"] > result["clean"]).any()
