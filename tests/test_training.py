"""Shared Trainer plumbing: arguments, DVCLive step alignment, resume discovery, saving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, Trainer

from lmlab.device import select_runtime
from lmlab.modeling import load_model
from lmlab.training import (
    LiveMetricsCallback,
    TrainingParams,
    find_resume_checkpoint,
    make_training_arguments,
    save_model_dir,
)


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
    assert find_resume_checkpoint(tmp_path / "ckpt") is None
    assert not (tmp_path / "dvc.yaml").exists()


def test_resume_checkpoint_ignores_missing_and_incomplete(tmp_path: Path) -> None:
    assert find_resume_checkpoint(tmp_path / "absent") is None
    (tmp_path / "checkpoint-3").mkdir()
    assert find_resume_checkpoint(tmp_path) is None


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


def test_checkpoint_dir_is_kept_for_the_same_run_and_wiped_for_another(tmp_path: Path) -> None:
    from lmlab.training import CHECKPOINT_STAMP, checkpoint_to_resume, run_fingerprint

    ckpt = tmp_path / "ckpt"
    data = tmp_path / "train.jsonl"
    data.write_text("a\n")
    first = run_fingerprint({"lr": 0.1}, [data])
    assert checkpoint_to_resume(ckpt, first) is None
    (ckpt / "checkpoint-3").mkdir()
    checkpoint_to_resume(ckpt, run_fingerprint({"lr": 0.1}, [data]))
    assert (ckpt / "checkpoint-3").exists(), "same params and data: the checkpoint is kept"
    data.write_text("b\n")
    changed = run_fingerprint({"lr": 0.1}, [data])
    assert changed != first
    checkpoint_to_resume(ckpt, changed)
    assert not (ckpt / "checkpoint-3").exists(), "changed data: stale checkpoints are removed"
    assert json.loads((ckpt / CHECKPOINT_STAMP).read_text()) == {"fingerprint": changed}
    assert run_fingerprint({"lr": 0.2}) != run_fingerprint({"lr": 0.1})


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-gpt-neox", "tiny-t5"])
def test_resume_loads_every_weight_under_its_in_memory_name(name: str, tmp_path: Path, tiny_tokenizer) -> None:
    """GPT-NeoX saves lm_head as embed_out; tied embeddings are saved once: both must come back."""
    from lmlab.modeling import ModelSpec, build_model
    from lmlab.training import ResumableTrainer

    spec = ModelSpec(name, n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=64)
    saved = build_model(spec, tiny_tokenizer, seed=1)
    saved.save_pretrained(tmp_path / "checkpoint-2")
    fresh = build_model(spec, tiny_tokenizer, seed=2)
    assert any(not torch.equal(a, b) for a, b in zip(saved.state_dict().values(), fresh.state_dict().values()))
    args = make_training_arguments(TrainingParams(max_steps=1, device="cpu"), tmp_path / "out", seed=0,
                                   runtime=select_runtime("cpu"), do_eval=False)
    ResumableTrainer(model=fresh, args=args)._load_from_checkpoint(str(tmp_path / "checkpoint-2"))
    for (key, a), b in zip(saved.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), key


def test_resume_refuses_a_checkpoint_missing_a_weight(tmp_path: Path, tiny_tokenizer) -> None:
    from safetensors.torch import load_file, save_file

    from lmlab.modeling import ModelSpec, build_model
    from lmlab.training import ResumableTrainer

    model = build_model(ModelSpec("tiny-gpt2", n_layer=1, d_model=32, n_head=2, d_ff=64), tiny_tokenizer, seed=1)
    model.save_pretrained(tmp_path / "checkpoint-2")
    weights = tmp_path / "checkpoint-2" / "model.safetensors"
    state = load_file(str(weights))
    dropped = next(k for k in state if k.endswith("mlp.c_fc.weight"))
    save_file({k: v for k, v in state.items() if k != dropped}, str(weights), metadata={"format": "pt"})
    args = make_training_arguments(TrainingParams(max_steps=1, device="cpu"), tmp_path / "out", seed=0,
                                   runtime=select_runtime("cpu"), do_eval=False)
    with pytest.raises(RuntimeError, match="lacks weights.*c_fc"):
        ResumableTrainer(model=model, args=args)._load_from_checkpoint(str(tmp_path / "checkpoint-2"))


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
