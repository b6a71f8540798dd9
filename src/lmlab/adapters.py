"""LoRA adapters (``peft``) for the one training loop, and how their models are saved and loaded.

Full fine-tuning with Adam keeps ~16 bytes per parameter on every GPU (weights, gradients and two
Adam moments; see :mod:`lmlab.plan`), which a 7B model cannot fit on an 80 GB GPU. A LoRA adapter
trains two small matrices per projection instead and freezes the base, so gradients and optimizer
state shrink to the adapter's size. It is one switch in every family's training section
(``lora: {rank: 0, ...}``; rank 0 = off, the default, which leaves training exactly as it was).

* Target modules are chosen by ``peft``'s ``"all-linear"``: every linear (or GPT-2 ``Conv1D``)
  projection of the transformer blocks, never the output head. That is GPT-2's ``c_attn``/``c_proj``/
  ``c_fc``, GPT-NeoX's ``query_key_value``/``dense``/``dense_h_to_4h``/``dense_4h_to_h``, Llama's
  ``q/k/v/o_proj`` and ``gate/up/down_proj``, T5's ``q/k/v/o`` and ``wi``/``wo``, without a
  hand-kept table per architecture. ``lora.targets`` lists module names to use instead.
* The saved model is usable by every later stage. ``save: merged`` (default) folds the adapter into
  the base weights and saves an ordinary model dir. ``save: adapter`` saves the adapter
  (``adapter_config.json`` + ``adapter_model.safetensors``) next to the tokenizer and, when the base
  is not loadable by name (a tiny model built from a config), the frozen base under ``base/``;
  :func:`lmlab.modeling.load_model` loads either layout and returns the merged model.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from lmlab.training_params import LoraParams  # torch-free, for the params check; re-exported

if TYPE_CHECKING:  # torch is imported by whoever built the model (issue 18: no torch in data stages)
    import torch
    from transformers import PreTrainedModel

__all__ = ["LoraParams", "ADAPTER_BASE_DIR", "add_lora", "is_adapter_dir", "is_peft_model", "lora_target_names", "merge_adapter",
           "save_adapter", "load_adapter_dir"]

logger = logging.getLogger(__name__)

# Sub-directory of an adapter model dir that holds a base which cannot be loaded by name.
ADAPTER_BASE_DIR = "base"


def add_lora(model: PreTrainedModel, params: LoraParams) -> torch.nn.Module:
    """``model`` wrapped as a ``peft`` LoRA model: only the adapter's matrices require gradients."""
    from peft import LoraConfig, TaskType, get_peft_model

    task = TaskType.SEQ_2_SEQ_LM if model.config.is_encoder_decoder else TaskType.CAUSAL_LM
    config = LoraConfig(
        r=params.rank, lora_alpha=params.alpha if params.alpha is not None else 2.0 * params.rank,
        lora_dropout=params.dropout, target_modules=list(params.targets) or "all-linear", task_type=task,
    )
    peft_model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    logger.info("LoRA rank %d on %s: %s of %s parameters train (%.2f %%)", params.rank,
                ", ".join(lora_target_names(peft_model)), f"{trainable:,}", f"{total:,}", 100.0 * trainable / total)
    return peft_model


def lora_target_names(model: torch.nn.Module) -> list[str]:
    """The distinct module names (last path part) that carry a LoRA adapter in ``model``."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")})


def is_peft_model(model: torch.nn.Module) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def merge_adapter(model: torch.nn.Module) -> PreTrainedModel:
    """The base model with the adapter folded into its weights (a plain ``PreTrainedModel``)."""
    return model.merge_and_unload()


def save_adapter(model: torch.nn.Module, directory: Path) -> None:
    """Write the adapter into ``directory`` and, when the base has no loadable name, the base under ``base/``.

    A base loaded by name (hub name or a local dir, e.g. ``models/ilm/all``) is referenced by that
    name in ``adapter_config.json``, so a 7B base is not copied into every experiment's outputs.
    """
    model.save_pretrained(directory)
    base = model.get_base_model()
    name = getattr(base, "name_or_path", "") or ""
    if not name:
        base_dir = directory / ADAPTER_BASE_DIR
        # unload() returns the base without the LoRA layers (and without folding them in); on a copy,
        # so the trained model stays as it is (this branch only runs for small config-built bases)
        copy.deepcopy(model).unload().save_pretrained(base_dir)
        config_path = directory / "adapter_config.json"
        config = json.loads(config_path.read_text())
        config["base_model_name_or_path"] = ADAPTER_BASE_DIR
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file() and not (Path(path) / "config.json").is_file()


def load_adapter_dir(path: str | Path, load_base, dtype: torch.dtype | None = None) -> PreTrainedModel:
    """The merged model of an adapter dir; ``load_base(name_or_path)`` loads its base.

    The base is ``base/`` inside the dir when the adapter was trained on a model built from a
    config, else the name recorded in ``adapter_config.json``.
    """
    from peft import PeftModel

    path = Path(path)
    recorded = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
    base_name = path / recorded if recorded == ADAPTER_BASE_DIR else recorded
    base = load_base(base_name)
    model = PeftModel.from_pretrained(base, str(path), torch_dtype=dtype) if dtype else PeftModel.from_pretrained(base, str(path))
    logger.info("loaded the LoRA adapter in %s on %s and merged it", path, base_name)
    return merge_adapter(model)
