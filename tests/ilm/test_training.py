"""ILM training: saved model dir, resume after interruption, checkpoint fingerprint, stage smoke tests."""

from __future__ import annotations

import csv
import json
import math
import pickle

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from lmlab.ilm.sequences import SPECIAL_TOKENS_FILE, IlmTokens
from lmlab.ilm.training import IlmTrainParams, train_ilm
from lmlab.modeling import ModelSpec
from lmlab.tokenization import load_tokenizer
from lmlab.training import TrainingParams
from tests.ilm.train_helpers import DOCS, ilm_tokenizer, masked_docs, tiny_params
from tests.interruption import KillAfterSave, SimulatedKill

SPEC = ModelSpec("tiny-gpt2", n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=128)


def _params(max_steps: int = 6, every: int = 3) -> IlmTrainParams:
    return IlmTrainParams(
        max_length=128, max_train_examples=None, max_eval_examples=6, num_samples=1, sample_max_new_tokens=4,
        trainer=TrainingParams(max_steps=max_steps, batch_size=4, eval_batch_size=8, lr=1e-2, warmup_ratio=0.0,
                               eval_steps=every, save_steps=every, logging_steps=1, device="cpu"),
    )


def _train(tmp, tok, name, callbacks=(), live=False, train_seed=0, every=3):
    """Train on masked examples written to ``tmp/<name>/train.pkl`` first (the run's input file)."""
    train = masked_docs(DOCS, 4, seed=train_seed)
    (tmp / name).mkdir(parents=True, exist_ok=True)
    (tmp / name / "train.pkl").write_bytes(pickle.dumps(train))
    return train_ilm(
        train, masked_docs(DOCS[:3], 2, seed=1), tok, SPEC, _params(every=every), 0,
        checkpoint_dir=tmp / name / "ckpt", live_dir=tmp / name / "live" if live else None,
        out_dir=tmp / name / "model", resolved_params={"test": 1}, inputs=[tmp / name / "train.pkl"],
        callbacks=callbacks,
    )


def _logged_steps(live, name="eval/infill_loss"):
    with (live / "plots" / "metrics" / f"{name}.tsv").open() as handle:
        return [int(row["step"]) for row in csv.DictReader(handle, delimiter="\t")]


@pytest.mark.slow
def test_resume_after_interruption_gives_the_same_weights(tmp_path):
    """The step-0 eval runs once (a resumed run keeps it from the checkpoint) and changes no weight."""
    tok = ilm_tokenizer()
    full = _train(tmp_path, tok, "full", live=True)
    with pytest.raises(SimulatedKill):
        _train(tmp_path, tok, "resumed", callbacks=[KillAfterSave(3)], live=True)
    assert (tmp_path / "resumed/ckpt/checkpoint-3").is_dir()
    assert not (tmp_path / "resumed/model").exists()
    resumed = _train(tmp_path, tok, "resumed", live=True)
    assert resumed["resumed_from"] == "checkpoint-3" and full["resumed_from"] is None
    assert resumed["global_step"] == full["global_step"] == 6
    for run in ("full", "resumed"):
        assert _logged_steps(tmp_path / run / "live") == [0, 3, 6]
        samples = (tmp_path / run / "live/samples.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in samples] == [0, 3, 6]
    assert resumed["eval_step0"] == full["eval_step0"] and full["eval_step0"]["infill_count"] > 0
    for rel in ("ckpt/checkpoint-6/model.safetensors", "model/model.safetensors"):
        a, b = load_file(tmp_path / "full" / rel), load_file(tmp_path / "resumed" / rel)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_eval_and_save_frequency_change_no_weight(tmp_path):
    """Evaluating (and checkpointing) every 2 steps or only at the end trains the same weights.

    Why ``ilm.train.trainer.eval_steps`` may be coarse (issue 18): the evals draw nothing from the
    training RNG, so the checkpoint at a given step is byte-identical whatever the eval cadence; the
    final model differs only if the best-eval-loss checkpoint moves.
    """
    tok = ilm_tokenizer()
    dense, sparse = _train(tmp_path, tok, "dense", every=2), _train(tmp_path, tok, "sparse", every=6)
    assert dense["global_step"] == sparse["global_step"] == 6 and dense["eval_step0"] == sparse["eval_step0"]
    assert sorted(p.name for p in (tmp_path / "sparse/ckpt").glob("checkpoint-*")) == ["checkpoint-6"]
    a = load_file(tmp_path / "dense/ckpt/checkpoint-6/model.safetensors")
    b = load_file(tmp_path / "sparse/ckpt/checkpoint-6/model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert dense["eval_last"] == sparse["eval_last"]


def test_a_killed_run_starts_over_when_its_training_data_changed(tmp_path):
    tok = ilm_tokenizer()
    with pytest.raises(SimulatedKill):
        _train(tmp_path, tok, "run", callbacks=[KillAfterSave(3)])
    assert (tmp_path / "run/ckpt/checkpoint-3").is_dir()
    restarted = _train(tmp_path, tok, "run", train_seed=7)  # other masks: other training bytes
    assert restarted["resumed_from"] is None and restarted["global_step"] == 6


@pytest.mark.slow
def test_saved_model_dir_loads_with_special_token_map(tmp_path):
    tok = ilm_tokenizer()
    summary = _train(tmp_path, tok, "run", live=True)
    out = tmp_path / "run" / "model"
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.get_input_embeddings().num_embeddings == len(tok)
    loaded_tok = load_tokenizer(out)
    assert IlmTokens.from_model_dir(out, loaded_tok) == IlmTokens.from_tokenizer(tok)
    special_map = json.loads((out / "special_tokens_map.json").read_text())
    assert sorted(special_map["additional_special_tokens"]) == sorted(
        json.loads((out / SPECIAL_TOKENS_FILE).read_text()).values())
    saved = json.loads((out / "training_summary.json").read_text())
    assert saved["best_checkpoint"] in {"checkpoint-3", "checkpoint-6"} and saved == json.loads(json.dumps(summary))
    samples = [json.loads(line) for line in (tmp_path / "run/live/samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [0, 3, 6] and all(isinstance(s["predicted"], list) for s in samples)
    metrics = json.loads((tmp_path / "run/live/metrics.json").read_text())
    assert {"context_loss", "infill_loss", "infill_textonly_loss", "infill_textonly_count"} <= set(metrics["eval"])
    # step 0 is logged like every other eval: same keys, step 0
    for name in ("context_loss", "infill_loss", "infill_textonly_loss", "context_count", "infill_textonly_count"):
        assert _logged_steps(tmp_path / "run/live", f"eval/{name}") == [0, 3, 6]
    step0, last = saved["eval_step0"], saved["eval_last"]
    assert set(step0) == {f"{k}_{w}" for k in ("context", "infill", "infill_textonly") for w in ("loss", "count")}
    # before any update the untrained model is near-uniform over the vocabulary: loss ~ ln |V|
    assert abs(step0["context_loss"] - math.log(len(tok))) < 0.5
    assert step0["infill_count"] == last["infill_count"] and last["infill_loss"] < step0["infill_loss"]
    assert saved["eval_best"]["infill_loss"] == pytest.approx(saved["best_eval_infill_loss"])


def _write_inputs(tmp_path):
    tok = ilm_tokenizer()
    tok.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "train.pkl").write_bytes(pickle.dumps(masked_docs(DOCS, 3, seed=0)))
    (tmp_path / "valid.pkl").write_bytes(pickle.dumps(masked_docs(DOCS[:2], 2, seed=1)))


def _stage_args(tmp_path, name, params, *extra):
    return ["--params", str(params), "--level", "A1", "--train", str(tmp_path / "train.pkl"),
            "--valid", str(tmp_path / "valid.pkl"), "--tokenizer", str(tmp_path / "tokenizer"),
            "--checkpoints", str(tmp_path / "ckpt" / name), "--live", str(tmp_path / "live" / name),
            "--out", str(tmp_path / "models" / name), *extra]


@pytest.mark.slow
def test_train_stage_smoke_transfer_and_bad_params(tmp_path):
    _write_inputs(tmp_path)
    from stages.ilm_train import main

    params = tiny_params(tmp_path / "params.yaml", max_steps=2, every=2)
    assert main(_stage_args(tmp_path, "A1", params)) == 0
    assert (tmp_path / "models/A1/ilm_special_tokens.json").exists()
    assert json.loads((tmp_path / "models/A1/params.json").read_text())["level"] == "A1"
    # transfer: fine-tunes the given model for ilm.transfer.max_steps; the level list is not recorded,
    # so adding a level to ilm.transfer.levels leaves the existing transfer models' bytes alone
    enabled = tiny_params(tmp_path / "params_t.yaml", max_steps=4, every=2, transfer=True)
    assert main(_stage_args(tmp_path, "transfer-A1", enabled, "--transfer", "--init-from",
                            str(tmp_path / "models/A1"))) == 0
    saved = json.loads((tmp_path / "models/transfer-A1/params.json").read_text())
    assert saved["init_from"].endswith("models/A1") and saved["train"]["trainer"]["max_steps"] == 2
    assert saved["transfer"] == {"max_steps": 2, "epochs": None, "lr": None}
    with pytest.raises(SystemExit):  # --transfer without --init-from is a usage error
        main(_stage_args(tmp_path, "transfer-x", enabled, "--transfer"))
    unknown = tmp_path / "levels.yaml"
    unknown.write_text(enabled.read_text().replace("levels: [A1]", "levels: [A1, D4]"))
    assert main(_stage_args(tmp_path, "transfer-D4", unknown, "--transfer", "--init-from",
                            str(tmp_path / "models/A1"))) == 2
    assert not (tmp_path / "models/transfer-D4").exists()
    # a typo in params: exit code 2 and no output
    bad = tmp_path / "bad.yaml"
    bad.write_text(params.read_text().replace("max_eval_examples", "max_eval_exemples"))
    assert main(_stage_args(tmp_path, "bad", bad)) == 2
    assert not (tmp_path / "models/bad").exists()
