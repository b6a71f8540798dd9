"""Model factory: tiny models built from configs, or any hub name / local directory.

``tiny-gpt2``, ``tiny-gpt-neox`` and ``tiny-t5`` are randomly initialised from a config
sized by :class:`ModelSpec` (the offline embedded default). Anything else goes through
``from_pretrained`` - a hub name (cached) or a local directory, one code path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lmlab.adapters import is_adapter_dir, is_peft_model, load_adapter_dir, save_adapter
from lmlab.artifacts import atomic_dir
from lmlab.errors import InputError

if TYPE_CHECKING:  # torch and transformers are imported where a model is built or loaded, so importing
    # ModelSpec (the params check, data stages) costs no torch start-up (issue 18)
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

TINY_MODELS = ("tiny-gpt2", "tiny-gpt-neox", "tiny-t5")
ModelKind = Literal["causal", "seq2seq"]

__all__ = ["ModelSpec", "TINY_MODELS", "is_tiny", "model_kind", "build_model", "load_model", "count_parameters",
           "save_model_dir"]


@dataclass(frozen=True)
class ModelSpec:
    """A base model: a tiny architecture with its sizes, or a hub name / local directory."""

    name: str = "tiny-gpt2"
    n_layer: int = 2
    d_model: int = 64
    n_head: int = 2
    d_ff: int = 256
    max_positions: int = 256
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for field in ("n_layer", "d_model", "n_head", "d_ff", "max_positions"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field}: must be a positive integer, got {getattr(self, field)}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model: must be divisible by n_head ({self.n_head}), got {self.d_model}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: must be in [0, 1), got {self.dropout}")

    @property
    def tiny(self) -> bool:
        return is_tiny(self.name)


def is_tiny(name: str) -> bool:
    return name in TINY_MODELS


def model_kind(name: str) -> ModelKind:
    """``seq2seq`` for T5-family names and directories, else ``causal``."""
    if name == "tiny-t5":
        return "seq2seq"
    path = Path(name)
    if (path / "adapter_config.json").exists() and not (path / "config.json").exists():  # a LoRA adapter dir
        return "seq2seq" if json.loads((path / "adapter_config.json").read_text()).get("task_type") == "SEQ_2_SEQ_LM" \
            else "causal"
    if (path / "config.json").exists():
        cfg = json.loads((path / "config.json").read_text())
        return "seq2seq" if cfg.get("is_encoder_decoder") else "causal"
    return "seq2seq" if "t5" in name.lower() or "bart" in name.lower() else "causal"


def _tiny_config(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase):
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        T5Config,
        T5ForConditionalGeneration,
    )

    vocab = len(tokenizer)
    pad = tokenizer.pad_token_id
    eos = tokenizer.eos_token_id
    if spec.name == "tiny-gpt2":
        return GPT2Config(
            vocab_size=vocab, n_positions=spec.max_positions, n_embd=spec.d_model, n_layer=spec.n_layer,
            n_head=spec.n_head, n_inner=spec.d_ff, resid_pdrop=spec.dropout, embd_pdrop=spec.dropout,
            attn_pdrop=spec.dropout, bos_token_id=eos, eos_token_id=eos, pad_token_id=pad,
        ), GPT2LMHeadModel
    if spec.name == "tiny-gpt-neox":
        return GPTNeoXConfig(
            vocab_size=vocab, hidden_size=spec.d_model, num_hidden_layers=spec.n_layer,
            num_attention_heads=spec.n_head, intermediate_size=spec.d_ff, max_position_embeddings=spec.max_positions,
            hidden_dropout=spec.dropout, attention_dropout=spec.dropout, bos_token_id=eos, eos_token_id=eos,
            pad_token_id=pad, tie_word_embeddings=False,
        ), GPTNeoXForCausalLM
    return T5Config(
        vocab_size=vocab, d_model=spec.d_model, d_kv=spec.d_model // spec.n_head, d_ff=spec.d_ff,
        num_layers=spec.n_layer, num_decoder_layers=spec.n_layer, num_heads=spec.n_head,
        dropout_rate=spec.dropout, pad_token_id=pad, eos_token_id=eos, decoder_start_token_id=pad,
        feed_forward_proj="relu", tie_word_embeddings=True,
    ), T5ForConditionalGeneration


def build_model(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, seed: int = 0) -> PreTrainedModel:
    """Build the base model for ``spec`` with embeddings sized to ``tokenizer``.

    Tiny names are initialised from ``seed``; other names load pretrained weights.
    """
    if spec.tiny:
        import torch

        config, cls = _tiny_config(spec, tokenizer)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(config)
        logger.info("built %s from config: %s parameters", spec.name, f"{count_parameters(model):,}")
        return model
    model = load_model(spec.name, model_kind(spec.name))
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model


def load_model(name_or_path: str | Path, kind: ModelKind | None = None, dtype: torch.dtype | None = None) -> PreTrainedModel:
    """Load a model with ``from_pretrained`` (local directory, or hub name from the cache).

    A LoRA adapter dir (``lora.save: adapter``, :mod:`lmlab.adapters`) loads its base, applies the
    adapter and returns the merged model, so every later stage reads both kinds of model dir alike.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    name = str(name_or_path)
    kind = kind or model_kind(name)
    if is_adapter_dir(name):
        return load_adapter_dir(name, lambda base: load_model(base, kind, dtype), dtype)
    cls = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    try:
        model = cls.from_pretrained(name, dtype=dtype) if dtype is not None else cls.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot load a {kind} model from '{name}' ({exc.__class__.__name__}: {str(exc).splitlines()[0]}).",
            path=name if Path(name).exists() else None,
            hint="use a local model directory, a hub name already in the HF cache (machines here are offline), "
            f"or one of {', '.join(TINY_MODELS)}.",
        ) from exc
    logger.info("loaded %s (%s parameters)", name, f"{count_parameters(model):,}")
    return model


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model_dir(
    out_dir: str | Path,
    model: PreTrainedModel | None,
    tokenizer: PreTrainedTokenizerBase | None,
    resolved_params: Mapping[str, Any],
    extra_json: Mapping[str, Any] | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Save a ``from_pretrained``-loadable model dir atomically, with ``params.json`` beside it.

    The tokenizer's ``local_files_only`` load flag (set by ``HF_HUB_OFFLINE``) is not saved, so the
    dir's bytes do not depend on the environment of the run that wrote it.
    """
    with atomic_dir(out_dir) as tmp:
        if model is not None and is_peft_model(model):
            save_adapter(model, tmp)  # lora.save: adapter (lmlab.adapters); load_model merges it back
        elif model is not None and state_dict is not None:
            model.save_pretrained(tmp, state_dict=dict(state_dict))  # gathered from FSDP shards (lmlab.training)
        elif model is not None:
            model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.init_kwargs.pop("local_files_only", None)
            tokenizer.save_pretrained(tmp)
        (tmp / "params.json").write_text(json.dumps(resolved_params, indent=2, sort_keys=True) + "\n")
        for name, obj in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    logger.info("saved model to %s", out_dir)
