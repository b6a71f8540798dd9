"""The one training loop and its plumbing: arguments, DVCLive step alignment, saving, run_training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, Trainer

from lmlab.device import select_runtime
from lmlab.modeling import load_model, save_model_dir
from lmlab.training import (
    LiveMetricsCallback,
    TrainingParams,
    TrainingRun,
    make_training_arguments,
    run_training,
)
from tests.interruption import KillAfterSave, SimulatedKill


def _dataset(tokenizer, texts: list[str]) -> Dataset:
    return Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=32), batched=True, remove_columns=["text"]
    )


def test_trainer_logs_to_dvclive_by_global_step_and_checkpoints(tmp_path: Path, tiny_gpt2, tiny_tokenizer, tiny_texts):
    params = TrainingParams(max_steps=4, batch_size=4, eval_steps=2, save_steps=2, logging_steps=1, lr=1e-3)
    args = make_training_arguments(params, tmp_path / "ckpt", seed=0, runtime=select_runtime("cpu"))
    data = _dataset(tiny_tokenizer, tiny_texts[:16])
    trainer = Trainer(
        model=tiny_gpt2, args=args, train_dataset=data, eval_dataset=data,
        data_collator=DataCollatorForLanguageModeling(tiny_tokenizer, mlm=False),
        callbacks=[LiveMetricsCallback(tmp_path / "live")],
    )
    trainer.train()
    rows = (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["step", "loss"]
    assert [int(r.split("\t")[0]) for r in rows[1:]] == [1, 2, 3, 4]
    summary = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert summary["step"] == 4 and "loss" in summary["eval"]
    # checkpoint-4 is the final checkpoint of a finished run: it is not resumed (see test_resume.py)
    assert (tmp_path / "ckpt" / "checkpoint-4" / "trainer_state.json").exists()
    from lmlab.resume import find_resume_checkpoint

    assert find_resume_checkpoint(tmp_path / "ckpt") is None
    assert not (tmp_path / "dvc.yaml").exists()


def test_save_model_dir_round_trip(tmp_path: Path, tiny_gpt2, tiny_tokenizer) -> None:
    out = tmp_path / "model"
    save_model_dir(out, tiny_gpt2, tiny_tokenizer, {"lr": 0.1}, {"extra.json": {"a": 1}})
    assert json.loads((out / "params.json").read_text()) == {"lr": 0.1}
    assert json.loads((out / "extra.json").read_text()) == {"a": 1}
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(load_model(out)(ids).logits, tiny_gpt2(ids).logits)


@pytest.mark.parametrize(("field", "value"), [("max_steps", 0), ("lr", 0.0), ("warmup_ratio", 1.0)])
def test_training_params_validation(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        TrainingParams(**{field: value})


def test_single_process_torchrun_runs_as_a_plain_process(monkeypatch) -> None:
    from lmlab.stage import stage_main

    seen = {}
    for key, value in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(key, value)

    @stage_main("probe")
    def probe(argv=None) -> None:
        import os

        seen.update({k: os.environ.get(k) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK")})

    assert probe([]) == 0
    assert seen == {"WORLD_SIZE": None, "RANK": None, "LOCAL_RANK": None}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert probe([]) == 0
    assert seen["WORLD_SIZE"] == "2" and seen["RANK"] == "1"


def test_saved_model_dir_does_not_depend_on_hf_offline(tmp_path: Path, tiny_tokenizer) -> None:
    """HF_HUB_OFFLINE makes from_pretrained record local_files_only; it must not reach the saved dir."""
    from lmlab.tokenization import load_tokenizer

    tiny_tokenizer.save_pretrained(tmp_path / "tok")
    saved = []
    for flag in (True, False):
        tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok", local_files_only=flag)
        save_model_dir(tmp_path / f"out-{flag}", None, tokenizer, {})
        saved.append((tmp_path / f"out-{flag}" / "tokenizer_config.json").read_bytes())
    assert saved[0] == saved[1] and b"local_files_only" not in saved[0]
    assert load_tokenizer(tmp_path / "out-True").get_vocab() == tiny_tokenizer.get_vocab()


def _run(tmp_path: Path, tokenizer, texts: list[str], *, lr: float = 1e-3, callbacks=(), name: str = "run"):
    """run_training on a tiny GPT-2 whose training data is the file ``tmp_path/train.txt``."""
    from lmlab.modeling import ModelSpec, build_model

    data_file = tmp_path / "train.txt"
    data_file.write_text("\n".join(texts))
    params = TrainingParams(max_steps=4, batch_size=4, eval_steps=2, save_steps=2, logging_steps=1, lr=lr)
    args = make_training_arguments(params, tmp_path / name / "ckpt", seed=0, runtime=select_runtime("cpu"),
                                   do_eval=False)
    model = build_model(ModelSpec("tiny-gpt2", n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=64), tokenizer,
                        seed=0)
    finalized = []
    run = TrainingRun(
        model=model, args=args, train_dataset=_dataset(tokenizer, data_file.read_text().splitlines()),
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False), tokenizer=tokenizer, callbacks=callbacks,
        finalize=lambda trainer, result, resumed: finalized.append(resumed) or {"summary.json": {"steps": result.global_step}},
    )
    outcome = run_training(run, resolved_params={"lr": lr}, inputs=[data_file], checkpoint_dir=tmp_path / name / "ckpt",
                           live_dir=tmp_path / name / "live", out_dir=tmp_path / name / "model")
    assert finalized == [outcome.resumed_from]
    return outcome


def test_run_training_saves_the_model_its_params_and_the_family_files(tmp_path: Path, tiny_tokenizer, tiny_texts):
    outcome = _run(tmp_path, tiny_tokenizer, tiny_texts[:16])
    out = tmp_path / "run" / "model"
    assert outcome.resumed_from is None and outcome.result.global_step == 4
    assert json.loads((out / "params.json").read_text()) == {"lr": 1e-3}
    assert json.loads((out / "summary.json").read_text()) == {"steps": 4}
    for a, b in zip(load_model(out).state_dict().values(), outcome.model.state_dict().values()):
        assert torch.equal(a, b.cpu())
    assert json.loads((tmp_path / "run" / "live" / "metrics.json").read_text())["step"] == 4


def test_run_training_resumes_a_killed_run_only_on_the_same_params_and_data(tmp_path: Path, tiny_tokenizer, tiny_texts):
    texts = tiny_texts[:16]
    with pytest.raises(SimulatedKill):
        _run(tmp_path, tiny_tokenizer, texts, callbacks=[KillAfterSave(2)])
    assert not (tmp_path / "run" / "model").exists(), "a killed run leaves no model"
    assert _run(tmp_path, tiny_tokenizer, texts).resumed_from.endswith("checkpoint-2")

    for change in ({"texts": list(reversed(texts))}, {"lr": 2e-3}):
        with pytest.raises(SimulatedKill):
            _run(tmp_path, tiny_tokenizer, texts, callbacks=[KillAfterSave(2)])
        outcome = _run(tmp_path, tiny_tokenizer, change.get("texts", texts), lr=change.get("lr", 1e-3))
        assert outcome.resumed_from is None, f"{change}: must start over"
        assert outcome.result.global_step == 4


@pytest.mark.parametrize(("epochs", "n", "batch", "accum", "world", "steps"), [
    (1, 16, 4, 1, 1, 4), (1, 17, 4, 1, 1, 5), (2, 10, 4, 1, 1, 6), (0.5, 16, 4, 1, 1, 2),
    (1, 16, 4, 2, 1, 2), (1, 16, 4, 1, 2, 2), (1, 3, 8, 4, 1, 1), (0.01, 100, 4, 1, 1, 1),
])
def test_steps_for_epochs_counts_the_trainers_batches(epochs, n, batch, accum, world, steps) -> None:
    from lmlab.training import steps_for_epochs

    assert steps_for_epochs(epochs, n, batch, accum, world) == steps


def test_epochs_are_validated_and_need_a_countable_training_set() -> None:
    from lmlab.training import resolve_max_steps

    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="epochs"):
            TrainingParams(epochs=bad)
    assert resolve_max_steps(TrainingParams(max_steps=7), None) == 7
    with pytest.raises(ValueError, match="epochs"):
        resolve_max_steps(TrainingParams(epochs=1.0), None)


def test_training_in_epochs_makes_exactly_that_many_passes(tmp_path: Path, tiny_gpt2, tiny_tokenizer, tiny_texts):
    data = _dataset(tiny_tokenizer, tiny_texts[:10])
    params = TrainingParams(max_steps=999, epochs=2.0, batch_size=4, eval_steps=50, save_steps=50, logging_steps=1,
                            warmup_ratio=0.5)
    args = make_training_arguments(params, tmp_path / "ckpt", seed=0, runtime=select_runtime("cpu"),
                                   train_examples=len(data), do_eval=False)
    assert args.max_steps == 6 and args.warmup_steps == 3  # 3 batches of <= 4 per epoch; warm-up of the 6 steps
    trainer = Trainer(model=tiny_gpt2, args=args, train_dataset=data,
                      data_collator=DataCollatorForLanguageModeling(tiny_tokenizer, mlm=False))
    trainer.train()
    assert trainer.state.global_step == 6 and trainer.state.epoch == pytest.approx(2.0)
