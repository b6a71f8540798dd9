"""A plan before the spend: every training stage of a profile, its size, its memory per GPU and GPU-hours.

``scripts/lab plan PROFILE`` (``scripts/plan.py``) applies a profile to params.yaml as the experiment
would, finds the training stages in dvc.yaml (those launched by ``scripts/launch``) and, for each,
prints the model, its parameter count, device, precision, world size, strategy, an estimated memory
per GPU and GPU-hours, and flags a stage that cannot fit the stated GPU memory. Nothing is loaded:
the parameter count comes from the model's config on the meta device (accelerate's
``init_empty_weights``), a local dir's or the HF cache's config, else the published config of the
write-ups' models (:data:`KNOWN_CONFIGS`).

Memory per GPU (bytes), stated arithmetic. The Trainer's mixed precision (bf16/fp16) is autocast over
fp32 weights, so full fine-tuning with Adam keeps per parameter 4 (weights) + 4 (gradients) + 8 (two
Adam moments) = 16 bytes. LoRA keeps 4 bytes per frozen base weight and 16 per adapter weight.
Sharding divides what it shards by the world size: FSDP FULL_SHARD and ZeRO-3 everything,
SHARD_GRAD_OP and ZeRO-2 gradients and Adam states, ZeRO-1 Adam states; offload moves the sharded
Adam states (and FSDP/ZeRO-3 weights) to CPU memory. Activations per micro-batch of ``b`` sequences of
``s`` tokens, hidden size ``h``, ``L`` layers: ``34 s b h L`` bytes at 16 bits (Korthikanti et al. 2022,
attention scores not stored: SDPA/flash), twice that in fp32, ``2 s b h L`` (layer inputs only) plus
one layer with gradient checkpointing; plus the logits and their gradient in fp32, ``8 s b V``. CUDA
context and allocator fragmentation are not counted (keep ~10 % headroom).

GPU-hours: ``6 N D`` FLOPs for ``N`` parameters over ``D`` tokens (``4 N D`` with LoRA: no weight
gradients; ``+2 N D`` with gradient checkpointing), ``D`` = optimiser steps x global batch x sequence
length (every sequence padded to the stage's length: an upper bound), at an assumed sustained
``tflops`` per GPU (default 120: ~40 % of an A100's bf16 peak; fp32 runs at a tenth of it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab.adapters import LoraParams
from lmlab.config import build_params
from lmlab.launch import LauncherParams
from lmlab.modeling import ModelSpec, is_tiny
from lmlab.training import TrainingParams

__all__ = ["KNOWN_CONFIGS", "StagePlan", "training_stages", "count_parameters_from_config", "memory_per_gpu",
           "plan_stage", "format_plan"]

GB = 1e9

# Published configs of the write-ups' base models (config.json on the hub), for a plan on a machine
# that has not downloaded them: only the fields that size the model.
KNOWN_CONFIGS: dict[str, dict[str, Any]] = {
    "gpt2": {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257, "n_positions": 1024},
    "distilgpt2": {"model_type": "gpt2", "n_embd": 768, "n_layer": 6, "n_head": 12, "vocab_size": 50257,
                   "n_positions": 1024},
    "google/flan-t5-small": {"model_type": "t5", "d_model": 512, "d_ff": 1024, "d_kv": 64, "num_layers": 8,
                             "num_decoder_layers": 8, "num_heads": 6, "vocab_size": 32128,
                             "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False},
    "EleutherAI/pythia-1.4b": {"model_type": "gpt_neox", "hidden_size": 2048, "num_hidden_layers": 24,
                               "num_attention_heads": 16, "intermediate_size": 8192, "vocab_size": 50304,
                               "rotary_pct": 0.25, "max_position_embeddings": 2048, "tie_word_embeddings": False},
    "Qwen/Qwen2.5-7B-Instruct": {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
                                 "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
                                 "vocab_size": 152064, "max_position_embeddings": 32768, "tie_word_embeddings": False},
    "HuggingFaceTB/SmolLM2-135M-Instruct": {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
                                            "num_hidden_layers": 30, "num_attention_heads": 9,
                                            "num_key_value_heads": 3, "vocab_size": 49152,
                                            "tie_word_embeddings": True},
}


@dataclass(frozen=True)
class StageTraining:
    """What a training stage trains: its base model, optimisation params, sequence length, vocabulary."""

    stage: str
    model: ModelSpec
    training: TrainingParams
    seq_len: int
    tiny_vocab: int  # vocabulary of a tiny model (its tokenizer's size); hub models have their own


def _get(params: Mapping[str, Any], dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        node = node[part]
    return node


def _training(node: Mapping[str, Any], **overrides: Any) -> TrainingParams:
    data = {**node, **{k: v for k, v in overrides.items() if v is not None}}
    return build_params(TrainingParams, data)


def _model(node: Mapping[str, Any]) -> ModelSpec:
    return build_params(ModelSpec, node)


def _stage_training(name: str, item: str | None, p: Mapping[str, Any]) -> StageTraining | None:
    """The training a dvc.yaml stage runs with params ``p`` (None: the stage trains nothing, e.g. skipped)."""
    label = f"{name}@{item}" if item is not None else name
    if name == "ilm_train":
        budget = p["ilm"]["budget"][item]
        length = {"max_steps": budget["max_steps"], "epochs": budget["epochs"]} if budget["epochs"] is not None or \
            budget["max_steps"] is not None else {}
        return StageTraining(label, _model(p["ilm"]["model"]), _training(p["ilm"]["train"]["trainer"], **length),
                             p["ilm"]["train"]["max_length"], p["ilm"]["tokenizer"]["vocab_size"] + 7)
    if name == "ilm_train_transfer":
        t = p["ilm"]["transfer"]
        return StageTraining(label, _model(p["ilm"]["model"]),
                             _training(p["ilm"]["train"]["trainer"], max_steps=t["max_steps"], epochs=t["epochs"],
                                       lr=t["lr"]),
                             p["ilm"]["train"]["max_length"], p["ilm"]["tokenizer"]["vocab_size"] + 7)
    if name == "ens_train":
        m = p["ensemble"]["models"][item]
        return StageTraining(label, _model(m["model"]), _training(m["training"]),
                             m["max_source_length"] + m["max_target_length"], p["ensemble"]["tokenizer"]["vocab_size"])
    if name == "wl_train":
        w = p["weighted"]
        return StageTraining(label, _model(w["model"]), _training(w["training"]), w["model"]["max_positions"],
                             w["tokenizer"]["vocab_size"])
    if name in ("mono_pretrain", "mono_train"):
        mono = p["monotonic"]
        if name == "mono_pretrain" and not mono["pretrain"]["enabled"]:
            return None
        node = mono["pretrain"]["training"] if name == "mono_pretrain" else mono["arms"][item]["training"]
        return StageTraining(label, _model(mono["model"]), _training(node), mono["data"]["block_size"],
                             mono["tokenizer"]["vocab_size"])
    raise KeyError(f"{label}: a training stage lmlab.plan does not know; add it to lmlab.plan._stage_training")


def _foreach_items(spec: Any, params: Mapping[str, Any]) -> list[str]:
    if isinstance(spec, str):
        match = re.fullmatch(r"\$\{([\w.]+)\}", spec.strip())
        spec = _get(params, match.group(1)) if match else []
    return list(spec.keys()) if isinstance(spec, Mapping) else [str(x) for x in spec]


def training_stages(dvc_yaml: Mapping[str, Any], params: Mapping[str, Any]) -> Iterator[StageTraining]:
    """Every stage of dvc.yaml launched by ``scripts/launch`` (a training stage), foreach expanded."""
    for name, body in dvc_yaml["stages"].items():
        do = body.get("do", body)
        if "scripts/launch" not in str(do.get("cmd", "")):
            continue
        items = _foreach_items(body["foreach"], params) if "foreach" in body else [None]
        for item in items:
            stage = _stage_training(name, item, params)
            if stage is not None:
                yield stage


def model_config(spec: ModelSpec, tiny_vocab: int):
    """A ``transformers`` config for ``spec``: tiny sizes, a local dir, the HF cache, else :data:`KNOWN_CONFIGS`."""
    from transformers import AutoConfig, GPT2Config, GPTNeoXConfig, T5Config

    if is_tiny(spec.name):
        sizes = dict(vocab_size=tiny_vocab, bos_token_id=0, eos_token_id=0)
        if spec.name == "tiny-gpt2":
            return GPT2Config(n_positions=spec.max_positions, n_embd=spec.d_model, n_layer=spec.n_layer,
                              n_head=spec.n_head, n_inner=spec.d_ff, **sizes)
        if spec.name == "tiny-gpt-neox":
            return GPTNeoXConfig(hidden_size=spec.d_model, num_hidden_layers=spec.n_layer, num_attention_heads=spec.n_head,
                                 intermediate_size=spec.d_ff, max_position_embeddings=spec.max_positions,
                                 tie_word_embeddings=False, **sizes)
        sizes.pop("bos_token_id")
        return T5Config(d_model=spec.d_model, d_kv=spec.d_model // spec.n_head, d_ff=spec.d_ff, num_layers=spec.n_layer,
                        num_decoder_layers=spec.n_layer, num_heads=spec.n_head, feed_forward_proj="relu", **sizes)
    path = Path(spec.name)
    if (path / "config.json").is_file():
        return AutoConfig.from_pretrained(path)
    try:
        return AutoConfig.from_pretrained(spec.name, local_files_only=True)
    except (OSError, ValueError):
        pass
    if spec.name in KNOWN_CONFIGS:
        known = dict(KNOWN_CONFIGS[spec.name])
        return AutoConfig.for_model(known.pop("model_type"), **known)
    raise KeyError(f"{spec.name}: no local config and not in lmlab.plan.KNOWN_CONFIGS")


@dataclass(frozen=True)
class ModelSize:
    parameters: int
    lora_parameters: int  # trainable parameters of a LoRA adapter (0 without LoRA)
    hidden: int
    layers: int
    vocab: int


def count_parameters_from_config(config, lora: LoraParams | None = None) -> ModelSize:
    """Parameters of the model ``config`` describes, built on the meta device (no memory, no weights).

    With LoRA, the adapter's size: ``rank x (in + out)`` for every linear projection of the blocks
    (what ``"all-linear"`` targets: every ``Linear``/``Conv1D`` except the output head), or the listed ones.
    """
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM
    from transformers.pytorch_utils import Conv1D

    cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    with init_empty_weights():
        model = cls.from_config(config)
    model.tie_weights()  # on the meta device tying is not done by construction; a tied head is not counted twice
    total = sum(p.numel() for p in model.parameters())
    adapter = 0
    if lora is not None and lora.enabled:
        head = model.get_output_embeddings()
        for name, module in model.named_modules():
            short = name.rsplit(".", 1)[-1]
            if module is head or (lora.targets and short not in lora.targets):
                continue
            if isinstance(module, torch.nn.Linear):
                adapter += lora.rank * (module.in_features + module.out_features)
            elif isinstance(module, Conv1D):
                adapter += lora.rank * sum(module.weight.shape)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None) or config.d_model
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None) or config.num_layers
    if getattr(config, "is_encoder_decoder", False):
        layers = config.num_layers + getattr(config, "num_decoder_layers", config.num_layers)
    return ModelSize(total, adapter, int(hidden), int(layers), int(config.vocab_size))


def memory_per_gpu(size: ModelSize, training: TrainingParams, seq_len: int, launcher: LauncherParams, world: int,
                   precision: str) -> dict[str, float]:
    """Estimated bytes per GPU by part (see the module docstring for the arithmetic)."""
    n = size.parameters
    trainable = size.lora_parameters if training.lora.enabled else n
    # the adapter's own weights come on top of the frozen base
    weights = 4.0 * (n + (trainable if training.lora.enabled else 0))
    grads, adam = 4.0 * trainable, 8.0 * trainable
    strategy = launcher.strategy
    shard_all = (strategy == "fsdp" and launcher.fsdp_sharding in ("FULL_SHARD", "HYBRID_SHARD")) or \
        (strategy == "deepspeed" and launcher.zero_stage == 3)
    shard_states = shard_all or (strategy == "fsdp" and launcher.fsdp_sharding == "SHARD_GRAD_OP") or \
        (strategy == "deepspeed" and launcher.zero_stage == 2)
    if world > 1 and shard_all:
        weights /= world
    if world > 1 and shard_states:
        grads /= world
    if world > 1 and (shard_states or (strategy == "deepspeed" and launcher.zero_stage == 1)):
        adam /= world
    if launcher.offload and strategy in ("fsdp", "deepspeed"):
        adam = 0.0
        if shard_all:
            weights = 0.0 if strategy == "deepspeed" else weights  # FSDP keeps the gathered unit on the GPU
    b, s, h, layers = training.batch_size, seq_len, size.hidden, size.layers
    per_layer = 34.0 * s * b * h * (1.0 if precision in ("bf16", "fp16") else 2.0)
    activations = (2.0 * s * b * h * layers + per_layer) if training.gradient_checkpointing else per_layer * layers
    logits = 8.0 * s * b * size.vocab
    return {"weights": weights, "gradients": grads, "adam": adam, "activations": activations + logits}


@dataclass(frozen=True)
class StagePlan:
    stage: str
    model: str
    parameters: int
    trainable: int
    device: str
    precision: str
    world: int
    strategy: str
    memory_gb: float
    steps: int | None
    gpu_hours: float | None
    fits: bool
    note: str = ""  # why the stage cannot run as planned (e.g. its global batch does not divide the world)


def plan_stage(stage: StageTraining, launcher: LauncherParams, world: int, *, train_examples: int | None,
               gpu_memory_gb: float, tflops: float) -> StagePlan:
    """The plan of one training stage at ``world`` GPUs (device ``auto`` plans for CUDA: bf16)."""
    from lmlab.errors import ParamsError
    from lmlab.training import accumulation_for, steps_for_epochs

    config = model_config(stage.model, stage.tiny_vocab)
    lora = stage.training.lora
    size = count_parameters_from_config(config, lora)
    seq_len = min(stage.seq_len, getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
                  or stage.seq_len)
    device = "cuda" if stage.training.device == "auto" else stage.training.device
    precision = stage.training.precision if stage.training.precision != "auto" else ("bf16" if device == "cuda" else "fp32")
    memory = sum(memory_per_gpu(size, stage.training, seq_len, launcher, world, precision).values())
    note = ""
    try:
        accumulation = accumulation_for(stage.training, world)
    except ParamsError:
        accumulation = 1
        note = (f"its global batch {stage.training.batch_size} x {stage.training.grad_accum} cannot be shared by "
                f"{world} processes: set grad_accum to a multiple of {world}")
    global_batch = stage.training.batch_size * stage.training.grad_accum
    steps: int | None = stage.training.max_steps
    if stage.training.epochs is not None:
        steps = steps_for_epochs(stage.training.epochs, train_examples, stage.training.batch_size, accumulation,
                                 world) if train_examples else None
    hours = None
    if steps is not None:
        tokens = steps * global_batch * seq_len
        flops_per_token = (4.0 if lora.enabled else 6.0) + (2.0 if stage.training.gradient_checkpointing else 0.0)
        rate = tflops * 1e12 * (1.0 if precision in ("bf16", "fp16") else 0.1)
        hours = flops_per_token * size.parameters * tokens / rate / 3600.0
    trainable = size.lora_parameters if lora.enabled else size.parameters
    return StagePlan(stage.stage, stage.model.name, size.parameters, trainable, device, precision, world,
                     launcher.strategy if world > 1 else "single", memory / GB, steps, hours,
                     memory / GB <= gpu_memory_gb and not note, note)


def format_plan(plans: list[StagePlan], gpu_memory_gb: float, tflops: float) -> str:
    """A fixed-width table, the totals, and one line per stage that does not fit."""
    head = f"{'stage':28s} {'model':28s} {'params':>8s} {'train':>8s} {'dev':4s} {'prec':4s} {'W':>3s} " \
           f"{'strategy':8s} {'GB/GPU':>7s} {'steps':>7s} {'GPU-h':>8s} fits"
    world = plans[0].world if plans else 1
    lines = [f"plan: {world} GPU(s), {gpu_memory_gb:g} GB each; device auto is planned as cuda (bf16 where auto)",
             head, "-" * len(head)]
    for p in plans:
        lines.append(f"{p.stage[:28]:28s} {p.model[-28:]:28s} {_short(p.parameters):>8s} {_short(p.trainable):>8s} "
                     f"{p.device:4s} {p.precision:4s} {p.world:>3d} {p.strategy:8s} {p.memory_gb:>7.1f} "
                     f"{p.steps if p.steps is not None else '?':>7} "
                     f"{_hours(p.gpu_hours):>8s} {'yes' if p.fits else 'NO'}")
    known = [p.gpu_hours for p in plans if p.gpu_hours is not None]
    lines.append(f"total: {sum(known):.2f} GPU-hours over {len(known)} of {len(plans)} stages "
                 f"(at {tflops:g} TFLOP/s sustained per GPU; '?' = epochs over data not counted: pass --examples)")
    for p in plans:
        if p.note:
            lines.append(f"CANNOT RUN: {p.stage}: {p.note}")
        elif not p.fits:
            lines.append(f"DOES NOT FIT: {p.stage} needs ~{p.memory_gb:.0f} GB per GPU > {gpu_memory_gb:g} GB: "
                         "use LoRA (lora: {rank: 16}), launcher.strategy fsdp/deepspeed over more GPUs, "
                         "gradient_checkpointing, or a smaller batch_size (raise grad_accum to keep the global batch)")
    return "\n".join(lines)


def _hours(hours: float | None) -> str:
    if hours is None:
        return "?"
    return f"{hours:.2f}" if hours >= 0.01 else "<0.01"


def _short(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.{1 if n < 100 * scale else 0}f}{unit}"
    return str(n)


def plan_json(plans: list[StagePlan]) -> str:
    return json.dumps([p.__dict__ for p in plans], indent=2)
