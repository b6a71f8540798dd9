"""lmlab.plan and scripts/plan.py: parameter counts from configs, memory per GPU, the 7B plan that cannot fit."""

from __future__ import annotations

import pytest
import yaml

from lmlab.adapters import LoraParams
from lmlab.launch import LauncherParams
from lmlab.modeling import ModelSpec
from lmlab.plan import ModelSize, count_parameters_from_config, memory_per_gpu, model_config, training_stages
from lmlab.training import TrainingParams
from tests.conftest import REPO_ROOT, load_script

SEVEN_B = ModelSize(parameters=7_000_000_000, lora_parameters=40_000_000, hidden=4096, layers=32, vocab=32000)
NO_ACTIVATIONS = dict(seq_len=1)


def _gb(parts: dict[str, float]) -> float:
    return (parts["weights"] + parts["gradients"] + parts["adam"]) / 1e9


def test_a_7b_full_fine_tune_under_ddp_needs_16_bytes_per_parameter() -> None:
    ddp = memory_per_gpu(SEVEN_B, TrainingParams(batch_size=1), launcher=LauncherParams(), world=4, precision="bf16",
                         **NO_ACTIVATIONS)
    assert _gb(ddp) == pytest.approx(112.0)  # 4 weights + 4 grads + 8 Adam = 16 bytes x 7e9 > 80 GB
    # ZeRO-3 / FSDP FULL_SHARD over 4 GPUs: a quarter of it
    for launcher in (LauncherParams(strategy="fsdp"), LauncherParams(strategy="deepspeed", zero_stage=3)):
        assert _gb(memory_per_gpu(SEVEN_B, TrainingParams(batch_size=1), launcher=launcher, world=4, precision="bf16",
                                  **NO_ACTIVATIONS)) == pytest.approx(28.0)
    # ZeRO-2: weights whole (28 GB), gradients and Adam sharded ((28 + 56) / 4)
    zero2 = memory_per_gpu(SEVEN_B, TrainingParams(batch_size=1), launcher=LauncherParams(strategy="deepspeed"),
                           world=4, precision="bf16", **NO_ACTIVATIONS)
    assert _gb(zero2) == pytest.approx(28.0 + 21.0)
    # LoRA: 4 bytes per frozen weight + 16 per adapter weight
    lora = memory_per_gpu(SEVEN_B, TrainingParams(batch_size=1, lora=LoraParams(rank=16)), launcher=LauncherParams(),
                          world=4, precision="bf16", **NO_ACTIVATIONS)
    assert _gb(lora) == pytest.approx(28.0 + 16 * 0.04)


def test_activations_shrink_with_gradient_checkpointing() -> None:
    full = memory_per_gpu(SEVEN_B, TrainingParams(batch_size=2), seq_len=2048, launcher=LauncherParams(), world=1,
                          precision="bf16")
    ckpt = memory_per_gpu(SEVEN_B, TrainingParams(batch_size=2, gradient_checkpointing=True), seq_len=2048,
                          launcher=LauncherParams(), world=1, precision="bf16")
    logits = 8.0 * 2048 * 2 * 32000
    assert full["activations"] - logits == pytest.approx(34.0 * 2048 * 2 * 4096 * 32)
    assert ckpt["activations"] - logits == pytest.approx(2.0 * 2048 * 2 * 4096 * 32 + 34.0 * 2048 * 2 * 4096)


@pytest.mark.parametrize(("name", "published"), [("gpt2", 124_439_808), ("Qwen/Qwen2.5-7B-Instruct", 7_615_616_512),
                                                 ("EleutherAI/pythia-1.4b", 1_414_647_808)])
def test_parameter_counts_from_configs_match_the_published_models(name: str, published: int) -> None:
    size = count_parameters_from_config(model_config(ModelSpec(name), tiny_vocab=0))
    assert size.parameters == published


def test_lora_adapter_size_is_rank_times_in_plus_out_of_every_projection() -> None:
    spec = ModelSpec("tiny-gpt2", n_layer=2, d_model=32, n_head=2, d_ff=64, max_positions=64)
    size = count_parameters_from_config(model_config(spec, tiny_vocab=100), LoraParams(rank=4))
    # per block: c_attn 32->96, attn c_proj 32->32, c_fc 32->64, mlp c_proj 64->32
    assert size.lora_parameters == 2 * 4 * ((32 + 96) + (32 + 32) + (32 + 64) + (64 + 32))


def test_every_training_stage_of_dvc_yaml_is_planned() -> None:
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    stages = [s.stage for s in training_stages(dvc, params)]
    launched = [name for name, body in dvc["stages"].items() if "scripts/launch" in str(body.get("do", body)["cmd"])]
    assert {s.split("@")[0] for s in stages} == set(launched) - {"ilm_train_transfer"}  # no transfer level by default
    assert "wl_train@odds_1_2-baseline" in stages and "mono_train@monotonic" in stages


def test_plan_command_on_the_default_and_on_the_7b_profile(capsys) -> None:
    plan = load_script("plan")
    assert plan.main(["--only", "wl_train@odds_1_2-baseline"]) == 0
    out = capsys.readouterr().out
    assert "wl_train@odds_1_2-baseline" in out and "tiny-gpt2" in out and " yes" in out
    assert plan.main(["weighted", "--only", "wl_train@odds_1_2-baseline", "--examples", "1000"]) == 1
    out = capsys.readouterr().out
    assert "Qwen/Qwen2.5-7B-Instruct" in out and "7.6B" in out and " 4 ddp" in out
    assert "DOES NOT FIT: wl_train@odds_1_2-baseline" in out
    assert "CANNOT RUN" not in out  # 4 GPUs share the global batch 1 x 16: 4 micro-batches each
    # the same stage with LoRA fits (-S as dvc exp run takes it)
    assert plan.main(["weighted", "--only", "wl_train@odds_1_2-baseline", "-S", "weighted.training.lora.rank=16"]) == 0
    assert "DOES NOT FIT" not in capsys.readouterr().out
