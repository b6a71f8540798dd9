"""ILM training length: steps or epochs (of examples or of documents), per level, one DVC params key per level."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace

import pytest
import yaml

from lmlab.config import load_params
from lmlab.errors import ParamsError
from lmlab.ilm.training import (
    IlmTrainParams,
    LevelBudget,
    TransferParams,
    apply_budget,
    apply_transfer,
    train_ilm,
)
from lmlab.modeling import ModelSpec
from lmlab.training import TrainingParams
from tests.conftest import REPO_ROOT, write_params
from tests.ilm.train_helpers import DOCS, ilm_tokenizer, masked_docs, tiny_params

SPEC = ModelSpec("tiny-gpt2", n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=128)
BASE = IlmTrainParams(max_length=128, max_train_examples=None, max_eval_examples=4, num_samples=0,
                      trainer=TrainingParams(max_steps=250, batch_size=4, eval_batch_size=8, lr=1e-2,
                                             warmup_ratio=0.0, eval_steps=3, save_steps=3, logging_steps=1,
                                             device="cpu"))


def test_a_level_budget_replaces_the_trainers_length():
    assert apply_budget(BASE, LevelBudget()) == BASE
    steps = apply_budget(replace(BASE, trainer=replace(BASE.trainer, epochs=2.0)), LevelBudget(max_steps=40))
    assert (steps.trainer.max_steps, steps.trainer.epochs) == (40, None)  # a step budget also clears epochs
    epochs = apply_budget(BASE, LevelBudget(epochs=1.0))
    assert epochs.trainer.epochs == 1.0 and epochs.trainer.lr == BASE.trainer.lr
    with pytest.raises(ValueError, match="max_steps: set max_steps or epochs"):
        LevelBudget(max_steps=10, epochs=1.0)
    with pytest.raises(ValueError, match="epochs"):
        LevelBudget(epochs=0.0)


def test_transfer_length_in_epochs():
    _, params, resolved = apply_transfer(SPEC, BASE, TransferParams(epochs=0.5), "models/ilm/all", {})
    assert params.trainer.epochs == 0.5 and resolved["transfer"]["epochs"] == 0.5


def test_budget_params_are_one_key_per_level(tmp_path):
    """`ilm_train@<level>` lists `ilm.budget.<level>` alone: another level's budget never retrains it."""
    stage = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]["ilm_train"]
    assert "ilm.budget.${item}" in stage["do"]["params"] and "ilm.budget" not in stage["do"]["params"]
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    assert set(params["ilm"]["budget"]) == set(stage["foreach"])
    for level in stage["foreach"]:  # every entry loads (the default: the trainer's length)
        assert load_params(LevelBudget, REPO_ROOT / "params.yaml", f"ilm.budget.{level}").inherits
    bad = write_params(tmp_path / "p.yaml", {"ilm.budget.C1.epochs": 1.0, "ilm.budget.C1.max_steps": 9},
                       sections=("ilm.budget",))
    with pytest.raises(ParamsError, match=r"ilm\.budget\.C1\.max_steps"):
        load_params(LevelBudget, bad, "ilm.budget.C1")


@pytest.mark.parametrize(("unit", "steps"), [("examples", 6), ("documents", 2)])
def test_one_epoch_of_examples_or_of_documents(tmp_path, unit, steps):
    """6 documents x 4 examples, batch 4: an epoch of examples is 6 steps, of documents ceil(6 / 4) = 2.

    The last step is evaluated and saved even off the eval_steps grid (HF does), so an epoch budget loses
    no step to the best-checkpoint selection.
    """
    params = replace(apply_budget(BASE, LevelBudget(epochs=1.0)), epoch_unit=unit)
    summary = train_ilm(masked_docs(DOCS, 4, seed=0), masked_docs(DOCS[:2], 2, seed=1), ilm_tokenizer(), SPEC,
                        params, 0, checkpoint_dir=tmp_path / "ckpt", live_dir=None, out_dir=None,
                        resolved_params={"unit": unit}, inputs=[])
    assert summary["global_step"] == summary["max_steps"] == steps
    assert summary["eval_best"] is not None and summary["eval_step0"] is not None
    if steps < 3:  # off the eval grid: the end-of-training eval is what the best checkpoint was chosen on
        assert summary["best_checkpoint"] == f"checkpoint-{steps}"


@pytest.mark.slow
def test_train_stage_reads_its_levels_budget(tmp_path):
    tok = ilm_tokenizer()
    tok.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "train.pkl").write_bytes(pickle.dumps(masked_docs(DOCS, 3, seed=0)))
    (tmp_path / "valid.pkl").write_bytes(pickle.dumps(masked_docs(DOCS[:2], 2, seed=1)))
    from stages.ilm_train import main

    params = tiny_params(tmp_path / "params.yaml", max_steps=48, every=3)
    write_params(params, {"ilm.budget.B1.max_steps": 3}, source=params)  # A1 would keep the trainer's 48
    common = ["--train", str(tmp_path / "train.pkl"), "--valid", str(tmp_path / "valid.pkl"),
              "--tokenizer", str(tmp_path / "tokenizer")]
    out = tmp_path / "B1"
    assert main(["--params", str(params), "--level", "B1", *common, "--checkpoints", str(tmp_path / "ckpt"),
                 "--live", str(tmp_path / "live"), "--out", str(out)]) == 0
    saved = json.loads((out / "params.json").read_text())
    assert saved["budget"] == {"max_steps": 3, "epochs": None} and saved["train"]["trainer"]["max_steps"] == 3
    assert json.loads((out / "training_summary.json").read_text())["global_step"] == 3
