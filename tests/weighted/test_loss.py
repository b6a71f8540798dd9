"""Gamma-weighted decision loss: equals HF's loss at gamma 1, accumulation-exact, right direction."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

from lmlab.weighted.data import DecisionExample
from lmlab.weighted.loss import WeightedLoss, class_weights, find_decisions, weighted_decision_loss
from lmlab.weighted.tokens import encode_decisions

USERS = ["Strength: the method is novel.", "Weakness: the baselines are weak.", "Note: minor typos remain.",
         "Strength: the theory is sound. Weakness: the idea is incremental."]


def _examples():
    out = []
    for i, (u, acc) in enumerate(zip(USERS, [True, False, True, False])):
        response = "\\boxed{Accept}" if acc else "\\boxed{Reject}"
        out.append(DecisionExample(f"r{i}", (("system", "Decide."), ("user", u)), response, acc, {}))
    return out


@pytest.fixture()
def batch(tiny_tokenizer):
    enc, vocab = encode_decisions(tiny_tokenizer, _examples(), 128)
    rows = [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in enc]
    collated = DataCollatorForSeq2Seq(tiny_tokenizer, padding=True, label_pad_token_id=-100)(rows)
    return rows, collated, vocab


def _loss(model, collated, vocab, **kw):
    out = model(input_ids=collated["input_ids"], attention_mask=collated["attention_mask"])
    return weighted_decision_loss(out.logits, collated["labels"], accept_ids=vocab.accept_ids,
                                  reject_ids=vocab.reject_ids, **kw)


@pytest.mark.parametrize("scope", ["sequence", "decision"])
@pytest.mark.parametrize("variant", ["accept", "reject"])
def test_gamma_one_equals_the_models_own_loss(tiny_gpt2, batch, scope, variant):
    _, collated, vocab = batch
    ours = _loss(tiny_gpt2, collated, vocab, gamma=1.0, variant=variant, scope=scope)
    hf = tiny_gpt2(**collated).loss
    assert ours.item() == pytest.approx(hf.item(), abs=1e-6)
    n = int(collated["labels"][:, 1:].ne(-100).sum())
    out = tiny_gpt2(input_ids=collated["input_ids"], attention_mask=collated["attention_mask"], labels=collated["labels"],
                    num_items_in_batch=torch.tensor(n + 7))
    ours_n = _loss(tiny_gpt2, collated, vocab, gamma=1.0, variant=variant, scope=scope, num_items_in_batch=n + 7)
    assert ours_n.item() == pytest.approx(out.loss.item(), abs=1e-6)


def test_class_weights_direction():
    is_acc = torch.tensor([True, False, True])
    assert class_weights(is_acc, 4.0, "accept").tolist() == [4.0, 1.0, 4.0]
    assert class_weights(is_acc, 4.0, "reject").tolist() == [1.0, 4.0, 1.0]


def test_accept_variant_scales_only_accept_rows(tiny_gpt2, batch, tiny_tokenizer):
    rows, _, vocab = batch
    collator = DataCollatorForSeq2Seq(tiny_tokenizer, padding=True, label_pad_token_id=-100)
    acc_rows = collator([rows[0], rows[2]])
    rej_rows = collator([rows[1], rows[3]])
    for scope in ("sequence", "decision"):
        base_a = _loss(tiny_gpt2, acc_rows, vocab, gamma=1.0, variant="accept", scope=scope)
        base_r = _loss(tiny_gpt2, rej_rows, vocab, gamma=1.0, variant="accept", scope=scope)
        up_a = _loss(tiny_gpt2, acc_rows, vocab, gamma=3.0, variant="accept", scope=scope)
        up_r = _loss(tiny_gpt2, rej_rows, vocab, gamma=3.0, variant="accept", scope=scope)
        assert up_r.item() == pytest.approx(base_r.item(), abs=1e-6)
        assert up_a.item() > base_a.item()
        if scope == "sequence":
            assert up_a.item() == pytest.approx(3.0 * base_a.item(), rel=1e-5)
        down = _loss(tiny_gpt2, acc_rows, vocab, gamma=3.0, variant="reject", scope=scope)
        assert down.item() == pytest.approx(base_a.item(), abs=1e-6)


def test_accept_variant_gradient_step_raises_p_accept(tiny_gpt2, batch):
    """One SGD step with gamma 8 (accept) moves p(Accept) up more than the unweighted step."""
    _, collated, vocab = batch
    state = {k: v.clone() for k, v in tiny_gpt2.state_dict().items()}

    def p_accept_after(gamma):
        tiny_gpt2.load_state_dict(state)
        loss = _loss(tiny_gpt2, collated, vocab, gamma=gamma, variant="accept", scope="decision")
        loss.backward()
        with torch.no_grad():
            for p in tiny_gpt2.parameters():
                p -= 0.5 * p.grad
                p.grad = None
            logits = tiny_gpt2(input_ids=collated["input_ids"], attention_mask=collated["attention_mask"]).logits
        pos, _ = find_decisions(collated["labels"][:, 1:], torch.tensor(vocab.accept_ids), torch.tensor(vocab.reject_ids))
        step = logits[torch.arange(len(pos)), pos]
        pair = torch.stack([step[:, vocab.accept_ids[0]], step[:, vocab.reject_ids[0]]], 1)
        return torch.softmax(pair, 1)[:, 0].mean().item()

    assert p_accept_after(8.0) > p_accept_after(1.0)


def test_bce_decision_matches_hand_computation(tiny_gpt2, batch):
    _, collated, vocab = batch
    gamma = 2.0
    ours = _loss(tiny_gpt2, collated, vocab, gamma=gamma, variant="reject", scope="bce_decision")
    logits = tiny_gpt2(input_ids=collated["input_ids"], attention_mask=collated["attention_mask"]).logits[:, :-1]
    labels = collated["labels"][:, 1:]
    a, r = vocab.accept_ids[0], vocab.reject_ids[0]
    total, n = 0.0, 0
    for b in range(labels.size(0)):
        for t in range(labels.size(1)):
            y = int(labels[b, t])
            if y == -100:
                continue
            n += 1
            if y in (a, r):
                z = (logits[b, t, a] - logits[b, t, r]).item()
                target = 1.0 if y == a else 0.0
                bce = -(target * math.log(1 / (1 + math.exp(-z))) + (1 - target) * math.log(1 - 1 / (1 + math.exp(-z))))
                total += (gamma if y == r else 1.0) * bce
            else:
                total += -torch.log_softmax(logits[b, t], -1)[y].item()
    assert ours.item() == pytest.approx(total / n, rel=1e-5)


def _one_step_params(model_factory, rows, tokenizer, loss, batch_size, grad_accum, tmp_path):
    model = model_factory()
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=batch_size,
                             gradient_accumulation_steps=grad_accum, learning_rate=0.1, optim="sgd",
                             lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1e9, report_to="none",
                             save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True, remove_unused_columns=False)
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    Trainer(model=model, args=args, train_dataset=rows, data_collator=collator, compute_loss_func=loss).train()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("scope", ["sequence", "bce_decision"])
def test_accumulation_1x4_equals_4x1_through_the_trainer(tiny_tokenizer, batch, tmp_path, scope):
    from lmlab.modeling import ModelSpec, build_model

    rows, _, vocab = batch
    spec = ModelSpec("tiny-gpt2", n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=128)
    loss = WeightedLoss(vocab.accept_ids, vocab.reject_ids, 4.0, "accept", scope)
    start = torch.cat([p.flatten() for p in build_model(spec, tiny_tokenizer, seed=0).parameters()])
    big = _one_step_params(lambda: build_model(spec, tiny_tokenizer, seed=0), rows, tiny_tokenizer, loss, 4, 1,
                           tmp_path / "a")
    acc = _one_step_params(lambda: build_model(spec, tiny_tokenizer, seed=0), rows, tiny_tokenizer, loss, 1, 4,
                           tmp_path / "b")
    assert (big - start).abs().max() > 1e-4  # the step did something
    assert torch.allclose(big, acc, atol=1e-6)


@pytest.mark.parametrize("kwargs,field", [
    ({"gamma": 0.0}, "gamma"), ({"gamma": -1.0}, "gamma"), ({"variant": "both"}, "variant"),
    ({"scope": "tokens"}, "scope"),
])
def test_bad_settings(kwargs, field):
    settings = {"accept_ids": (1,), "reject_ids": (2,), "gamma": 2.0, "variant": "accept", "scope": "sequence",
                **kwargs}
    with pytest.raises(ValueError, match=field):
        WeightedLoss(**settings)


def test_row_without_decision_token_is_an_error():
    labels = torch.tensor([[-100, 5, 6], [-100, 7, 8]])
    with pytest.raises(ValueError, match="no decision token"):
        find_decisions(labels[:, 1:], torch.tensor([7]), torch.tensor([9]))
