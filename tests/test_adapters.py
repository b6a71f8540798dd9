"""LoRA through the one training loop, and gradient checkpointing: tiny GPT-2 and Llama models on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import (
    DataCollatorForLanguageModeling,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

from lmlab.adapters import LoraParams, add_lora, is_adapter_dir, lora_target_names
from lmlab.config import params_to_dict
from lmlab.device import select_runtime
from lmlab.modeling import load_model
from lmlab.training import TrainingParams, TrainingRun, make_training_arguments, run_training

VOCAB = 400


def tiny(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if arch == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2, n_inner=64))
    if arch == "llama":
        return LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64))
    if arch == "gpt-neox":
        return GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                num_attention_heads=2, max_position_embeddings=64))
    return T5ForConditionalGeneration(T5Config(vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2,
                                               decoder_start_token_id=0))


@pytest.mark.parametrize(("arch", "expected"), [
    ("gpt2", {"c_attn", "c_proj", "c_fc"}),
    ("gpt-neox", {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}),
    ("llama", {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}),
    ("t5", {"q", "k", "v", "o", "wi", "wo"}),
])
def test_lora_targets_every_projection_of_each_architecture(arch: str, expected: set[str]) -> None:
    model = add_lora(tiny(arch), LoraParams(rank=2))
    assert set(lora_target_names(model)) == expected
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)


def test_an_explicit_target_list_overrides_the_automatic_choice() -> None:
    model = add_lora(tiny("llama"), LoraParams(rank=2, targets=("q_proj", "v_proj")))
    assert lora_target_names(model) == ["q_proj", "v_proj"]


def test_switches_off_leave_the_recorded_params_as_before() -> None:
    """Off (the default), the new switches are not in params.json: old model dirs keep their bytes."""
    off = params_to_dict(TrainingParams())
    assert "lora" not in off and "gradient_checkpointing" not in off
    on = params_to_dict(TrainingParams(gradient_checkpointing=True, lora=LoraParams(rank=8)))
    assert on["gradient_checkpointing"] is True and on["lora"]["rank"] == 8
    args = make_training_arguments(TrainingParams(), "/tmp/unused", 0, select_runtime("cpu"))
    assert not args.activation_checkpointing and not hasattr(args, "lmlab_lora")


def _train(tmp_path: Path, arch: str, save: str, checkpointing: bool = False) -> tuple[torch.nn.Module, dict[str, torch.Tensor], Path]:
    model = tiny(arch)
    base_before = {k: v.clone() for k, v in model.state_dict().items()}
    params = TrainingParams(max_steps=4, batch_size=4, lr=5e-2, warmup_ratio=0.0, logging_steps=2, save_steps=4,
                            eval_steps=4, lora=LoraParams(rank=4, save=save), gradient_checkpointing=checkpointing)
    args = make_training_arguments(params, tmp_path / "ckpt", seed=0, runtime=select_runtime("cpu"), do_eval=False)
    g = torch.Generator().manual_seed(1)
    data = Dataset.from_dict({"input_ids": torch.randint(3, VOCAB, (16, 12), generator=g).tolist()})
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({f"t{i}": i for i in range(VOCAB)}, "t0")),
                                  pad_token="t0", eos_token="t1")
    run = TrainingRun(model=model, args=args, train_dataset=data,
                      data_collator=DataCollatorForLanguageModeling(tok, mlm=False), tokenizer=tok)
    outcome = run_training(run, resolved_params={"arch": arch}, inputs=[], checkpoint_dir=tmp_path / "ckpt",
                           live_dir=None, out_dir=tmp_path / "out")
    assert outcome.model.get_base_model().is_activation_checkpointing == checkpointing
    return outcome.model, base_before, tmp_path / "out"


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_lora_trains_only_the_adapter_and_every_saved_form_is_the_trained_model(tmp_path: Path, arch: str) -> None:
    trained, base_before, adapter_dir = _train(tmp_path / "adapter", arch, save="adapter")
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    trained.eval()
    with torch.no_grad():
        trained_logits = trained(input_ids=ids).logits

    # only the adapter moved: every base weight is the one training started from
    base = trained.get_base_model().state_dict()
    lora_b = [v for k, v in base.items() if "lora_B" in k]
    assert lora_b and any(v.abs().max() > 0 for v in lora_b)  # B starts at zero: non-zero means it trained
    for key, before in base_before.items():
        after_key = key if key in base else key.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(base[after_key], before), key

    # adapter dir: adapter + base/ (a config-built base has no loadable name); load_model merges it back
    assert is_adapter_dir(adapter_dir) and (adapter_dir / "base" / "config.json").is_file()
    assert json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"] == "base"
    reloaded = load_model(adapter_dir)
    assert not hasattr(reloaded, "peft_config")
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids).logits, trained_logits, atol=1e-5)

    # merged (the default): an ordinary model dir with the same function as the adapter model (trained
    # with gradient checkpointing on, which recomputes activations and changes nothing else)
    _, _, merged_dir = _train(tmp_path / "merged", arch, save="merged", checkpointing=True)
    assert (merged_dir / "config.json").is_file() and not (merged_dir / "adapter_config.json").exists()
    with torch.no_grad():
        assert torch.allclose(load_model(merged_dir)(input_ids=ids).logits, trained_logits, atol=1e-5)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(arch: str) -> None:
    ids = torch.randint(3, VOCAB, (2, 16), generator=torch.Generator().manual_seed(2))
    results = []
    for checkpointing in (False, True):
        model = tiny(arch)
        model.train()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            assert model.is_activation_checkpointing
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    assert all(torch.allclose(grads_a[k], grads_b[k], atol=1e-6) for k in grads_a)


def test_the_gradient_checkpointing_switch_reaches_the_trainer() -> None:
    args = make_training_arguments(TrainingParams(gradient_checkpointing=True), "/tmp/unused", 0, select_runtime("cpu"))
    assert args.activation_checkpointing and args.activation_checkpointing_kwargs == {"use_reentrant": False}


def test_the_monotonic_arm_refuses_a_lora_adapter(tmp_path: Path) -> None:
    """W + BA is not constrained non-negative: a LoRA monotonic arm would not be monotone."""
    from lmlab.errors import ParamsError
    from lmlab.monotonic.constraint import MonotonicParams
    from lmlab.monotonic.training import ArmParams, run_arm

    arm = ArmParams(constrained=True, training=TrainingParams(lora=LoraParams(rank=4)))
    with pytest.raises(ParamsError, match="not be monotone"):
        run_arm(tmp_path / "absent", arm, MonotonicParams(), {}, 8, 0, tmp_path / "o", tmp_path / "c", tmp_path / "l",
                {}, [])


@pytest.mark.slow
def test_the_ensemble_family_trains_a_seq2seq_lora_adapter_that_later_stages_load(tmp_path: Path, tiny_tokenizer) -> None:
    """A family's own training function with the switch on: the T5 model dir is an adapter that load_model merges."""
    from tests.ensemble.test_training import ROW, ROW2, _train_causal

    result = _train_causal(tmp_path, tiny_tokenizer, [ROW, ROW2] * 2, base="tiny-t5",
                           training={"lora": LoraParams(rank=2, save="adapter"), "lr": 5e-2})
    assert result["kind"] == "seq2seq" and result["global_step"] == 4
    assert is_adapter_dir(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "adapter_config.json").read_text())["task_type"] == "SEQ_2_SEQ_LM"
    model = load_model(tmp_path / "model")
    assert type(model).__name__ == "T5ForConditionalGeneration" and not hasattr(model, "peft_config")
