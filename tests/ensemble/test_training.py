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


def test_loss_on_prompt_trains_on_the_whole_text(tiny_tokenizer):
    """The write-up's causal training: the prompt is next-token-predicted too (EOS still appended)."""
    masked = encode_causal_example(tiny_tokenizer, ROW, max_source=512, max_target=512)
    full = encode_causal_example(tiny_tokenizer, ROW, max_source=512, max_target=512, loss_on_prompt=True)
    assert full["input_ids"] == masked["input_ids"]
    assert full["labels"] == full["input_ids"] and IGNORE_INDEX not in full["labels"]
    batch = CausalSFTCollator(tiny_tokenizer.pad_token_id)([full, masked])
    n_prompt = masked["labels"].count(IGNORE_INDEX)
    assert (batch["labels"][0] != IGNORE_INDEX).sum() == len(full["input_ids"])
    assert (batch["labels"][1] != IGNORE_INDEX).sum() == len(masked["input_ids"]) - n_prompt


def test_loss_on_prompt_is_a_causal_option_only():
    import pytest

    from lmlab.ensemble.training import SftModelParams
    from lmlab.modeling import ModelSpec

    assert SftModelParams(model=ModelSpec("tiny-gpt2"), loss_on_prompt=True).loss_on_prompt
    with pytest.raises(ValueError, match="loss_on_prompt"):
        SftModelParams(model=ModelSpec("tiny-t5"), loss_on_prompt=True)


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


def _train_causal(tmp_path, tokenizer, rows, callbacks=(), base="tiny-gpt2", **overrides):
    """train_instruction_model (tiny causal base) on ``rows`` written to ``tmp_path/train.jsonl`` first."""
    import json

    from lmlab.device import select_runtime
    from lmlab.ensemble.training import SftModelParams, train_instruction_model
    from lmlab.modeling import ModelSpec
    from lmlab.training import TrainingParams

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    training = {"max_steps": 4, "batch_size": 2, "eval_steps": 2, "save_steps": 2, "logging_steps": 2,
                "device": "cpu", **overrides.pop("training", {})}
    params = SftModelParams(
        model=ModelSpec(base, n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=128),
        training=TrainingParams(**training), max_source_length=48, max_target_length=24, **overrides,
    )
    return train_instruction_model(params, rows, [ROW], tokenizer, select_runtime("cpu"), name="causal",
                                   inputs=[tmp_path / "train.jsonl"], checkpoint_dir=tmp_path / "ck",
                                   live_dir=tmp_path / "live", out_dir=tmp_path / "model", callbacks=callbacks)


def test_a_killed_run_resumes_on_the_same_data_and_starts_over_on_changed_data(tmp_path, tiny_tokenizer):
    import json

    import pytest

    from tests.interruption import KillAfterSave, SimulatedKill

    rows = [ROW, ROW2] * 4
    with pytest.raises(SimulatedKill):
        _train_causal(tmp_path, tiny_tokenizer, rows, callbacks=[KillAfterSave(2)])
    assert _train_causal(tmp_path, tiny_tokenizer, rows)["resumed_from"] == "checkpoint-2"
    with pytest.raises(SimulatedKill):
        _train_causal(tmp_path, tiny_tokenizer, rows, callbacks=[KillAfterSave(2)])
    changed = _train_causal(tmp_path, tiny_tokenizer, [ROW2, ROW] * 4)
    assert changed["resumed_from"] is None and changed["global_step"] == 4
    saved = json.loads((tmp_path / "model" / "ensemble_model.json").read_text())
    assert saved["name"] == "causal" and saved["kind"] == "causal" and saved["global_step"] == 4


def test_training_on_prompt_and_answer_changes_the_loss(tmp_path, tiny_tokenizer):
    """Same model, data and seed: only the labels differ, so the losses must too."""
    import json

    rows = [ROW, ROW2] * 4
    masked = _train_causal(tmp_path / "masked", tiny_tokenizer, rows)
    full = _train_causal(tmp_path / "full", tiny_tokenizer, rows, loss_on_prompt=True)
    assert masked["global_step"] == full["global_step"] == 4
    assert abs(masked["train_loss"] - full["train_loss"]) > 1e-3
    assert json.loads((tmp_path / "full" / "model" / "params.json").read_text())["loss_on_prompt"] is True


def test_training_length_in_epochs(tmp_path, tiny_tokenizer):
    """The write-up trains for epochs: 2 passes over 6 rows at batch 2 are 6 steps (max_steps ignored)."""
    result = _train_causal(tmp_path, tiny_tokenizer, [ROW, ROW2] * 3, training={"epochs": 2.0, "max_steps": 50})
    assert result["global_step"] == 6


def test_seq2seq_loss_is_a_mean_under_gradient_accumulation(tmp_path, tiny_tokenizer):
    """One step over the same 4 rows: batch 4, or batch 1 x accumulation 4, logs about the same loss
    (T5 returns a batch mean: without the division the accumulated loss would be 4x)."""
    rows = [ROW, ROW2] * 2
    one = {"max_steps": 1, "batch_size": 4, "lr": 1e-9, "warmup_ratio": 0.0}
    big = _train_causal(tmp_path / "big", tiny_tokenizer, rows, base="tiny-t5", training=one)
    accum = _train_causal(tmp_path / "accum", tiny_tokenizer, rows, base="tiny-t5",
                          training={**one, "batch_size": 1, "grad_accum": 4})
    assert big["kind"] == accum["kind"] == "seq2seq"
    assert 0.8 < accum["train_loss"] / big["train_loss"] < 1.25
