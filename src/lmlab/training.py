"""Shared HF ``Trainer`` plumbing: typed training params, DVCLive logging, resume, saving.

Every family trains through ``transformers.Trainer`` (or ``Seq2SeqTrainer``), so the same
stage runs on one CPU, one GPU or N GPUs under ``torchrun``/``accelerate launch`` with no
code change; only the main process writes outputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Seq2SeqTrainer,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from lmlab.artifacts import atomic_dir, remove_path
from lmlab.device import Runtime
from lmlab.stage import is_main_process

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_STAMP",
    "TrainingParams",
    "run_fingerprint",
    "checkpoint_to_resume",
    "LiveMetricsCallback",
    "StrictResumeMixin",
    "ResumableTrainer",
    "ResumableSeq2SeqTrainer",
    "make_training_arguments",
    "find_resume_checkpoint",
    "save_model_dir",
]


@dataclass(frozen=True)
class TrainingParams:
    """Optimisation settings shared by every training stage (one section per family)."""

    max_steps: int = 200
    batch_size: int = 16
    eval_batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-3
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    eval_steps: int = 50
    save_steps: int = 50
    logging_steps: int = 10
    save_total_limit: int = 2
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    tensorboard: bool = False

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "eval_batch_size", "grad_accum", "eval_steps", "save_steps",
                     "logging_steps", "save_total_limit"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm: must be > 0, got {self.max_grad_norm}")


def make_training_arguments(
    params: TrainingParams,
    output_dir: str | Path,
    seed: int,
    runtime: Runtime,
    *,
    do_eval: bool = True,
    metric_for_best_model: str | None = None,
    greater_is_better: bool = False,
    group_by_length: bool = False,
    remove_unused_columns: bool = True,
    cls: type[TrainingArguments] = TrainingArguments,
    **extra: Any,
) -> TrainingArguments:
    """``TrainingArguments`` from our params: step-based eval/save, clipping, schedule, seeds."""
    report_to = ["tensorboard"] if params.tensorboard else "none"
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        max_steps=params.max_steps,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.eval_batch_size,
        gradient_accumulation_steps=params.grad_accum,
        learning_rate=params.lr,
        lr_scheduler_type=params.lr_scheduler,
        warmup_steps=int(math.ceil(params.warmup_ratio * params.max_steps)),
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm,
        logging_steps=params.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=params.save_steps,
        save_total_limit=params.save_total_limit,
        eval_strategy="steps" if do_eval else "no",
        eval_steps=params.eval_steps if do_eval else None,
        seed=seed,
        data_seed=seed,
        report_to=report_to,
        disable_tqdm=False,
        dataloader_num_workers=0,
        remove_unused_columns=remove_unused_columns,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        **runtime.trainer_flags(),
    )
    if do_eval and metric_for_best_model:
        kwargs.update(
            load_best_model_at_end=True,
            metric_for_best_model=metric_for_best_model,
            greater_is_better=greater_is_better,
        )
    kwargs.update(extra)
    return cls(**kwargs)


def find_resume_checkpoint(checkpoint_dir: str | Path) -> str | None:
    """The last complete ``checkpoint-N`` under ``checkpoint_dir`` (a persisted DVC out), if any."""
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return None
    last = get_last_checkpoint(str(checkpoint_dir))
    if last and not (Path(last) / "trainer_state.json").exists():
        logger.warning("ignoring incomplete checkpoint %s", last)
        return None
    if last and _is_final(Path(last)):
        # Resuming at global_step == max_steps makes the Trainer run one extra optimiser step
        # whenever max_steps is not a multiple of the steps per epoch (it re-enters the last
        # epoch before checking max_steps), so `dvc repro -f` would change a finished model.
        # Training again from the start gives exactly the uninterrupted run's model instead.
        logger.info("%s is the final checkpoint of a finished run: training again from the start", last)
        if int(os.environ.get("RANK", "0")) == 0:
            for stale in checkpoint_dir.glob("checkpoint-*"):
                remove_path(stale)
        return None
    if last:
        logger.info("resuming from %s", last)
    return last


def _is_final(checkpoint: Path) -> bool:
    """True when the checkpoint's ``trainer_state.json`` says its run reached ``max_steps``."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        return 0 < int(state.get("max_steps") or 0) <= int(state.get("global_step") or 0)
    except (OSError, ValueError, TypeError):
        return False


CHECKPOINT_STAMP = "lmlab_fingerprint.json"


def run_fingerprint(params: Any, files: Sequence[str | Path] = ()) -> str:
    """A digest of what a training run depends on: its resolved params and (optionally) data files."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for path in map(Path, files):
        for part in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if part.is_file():
                digest.update(part.name.encode())
                digest.update(part.read_bytes())
    return digest.hexdigest()


def checkpoint_to_resume(
    checkpoint_dir: str | Path, fingerprint: str, args: TrainingArguments | None = None
) -> str | None:
    """The checkpoint to resume from, if the persisted dir was written for the same run.

    Checkpoint dirs are ``persist: true`` DVC outs, so they survive a params change
    (``dvc exp run -S ...``); resuming them would silently mix two runs. The dir carries a
    fingerprint stamp (:func:`run_fingerprint`); on a mismatch the main process deletes it and
    training starts over. With ``args``, other ranks wait until the main process is done.
    """
    checkpoint_dir = Path(checkpoint_dir)
    stamp = checkpoint_dir / CHECKPOINT_STAMP

    def reset() -> None:
        old = json.loads(stamp.read_text()).get("fingerprint") if stamp.exists() else None
        if checkpoint_dir.exists() and old != fingerprint:
            if any(checkpoint_dir.iterdir()):
                logger.warning("checkpoints in %s were written for other params/data: starting over", checkpoint_dir)
            remove_path(checkpoint_dir)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")

    if args is None:
        if is_main_process():
            reset()
    else:
        with args.main_process_first(desc="checkpoint fingerprint"):
            if args.process_index == 0:
                reset()
    return find_resume_checkpoint(checkpoint_dir)


class StrictResumeMixin:
    """Resume model weights under their in-memory names, and never resume half-loaded.

    transformers 5 saves some models under legacy key names (GPT-NeoX ``lm_head`` -> ``embed_out``),
    but ``Trainer._load_from_checkpoint`` loads ``model.safetensors`` with a non-strict
    ``load_state_dict``: renamed weights would silently stay at their fresh initialisation. This
    applies the model's registered renamings (``WeightRenaming``) and raises if a weight that does
    not share storage with a loaded one (tied embeddings do) is still missing. FSDP and DeepSpeed
    checkpoints keep the Trainer's own loader.
    """

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        model = model if model is not None else self.model  # type: ignore[attr-defined]
        path = Path(resume_from_checkpoint) / "model.safetensors"
        if not path.exists() or self.is_fsdp_enabled or self.is_deepspeed_enabled:  # type: ignore[attr-defined]
            return super()._load_from_checkpoint(resume_from_checkpoint, model)  # type: ignore[misc]
        from safetensors.torch import load_file

        state = rename_legacy_keys(load_file(str(path), device="cpu"), model)
        result = model.load_state_dict(state, strict=False)
        current = model.state_dict()
        loaded = {current[k].data_ptr() for k in state if k in current}
        missing = [k for k in result.missing_keys if current[k].data_ptr() not in loaded]
        if missing:
            raise RuntimeError(f"checkpoint {resume_from_checkpoint} lacks weights {missing[:5]}; "
                               "delete the checkpoint dir to train from the start")
        logger.info("loaded checkpoint weights from %s", resume_from_checkpoint)


def rename_legacy_keys(state: dict[str, Any], model: Any) -> dict[str, Any]:
    """Map saved key names the model does not know onto its own, by its registered renamings."""
    from transformers.conversion_mapping import extract_weight_conversions_for_model
    from transformers.core_model_loading import WeightRenaming, apply_renamings

    expected = set(model.state_dict())
    renamings = [r for r in extract_weight_conversions_for_model(model) or [] if isinstance(r, WeightRenaming)]
    for key in [k for k in state if k not in expected]:
        renamed = apply_renamings(key, renamings)
        if renamed != key and renamed in expected:
            state[renamed] = state.pop(key)
    return state


class ResumableTrainer(StrictResumeMixin, Trainer):
    """``Trainer`` with :class:`StrictResumeMixin`."""


class ResumableSeq2SeqTrainer(StrictResumeMixin, Seq2SeqTrainer):
    """``Seq2SeqTrainer`` with :class:`StrictResumeMixin`."""


class LiveMetricsCallback(TrainerCallback):
    """Log Trainer metrics to DVCLive with ``step`` = the optimiser's global step (rank 0 only).

    ``Live(dir, dvcyaml=False)`` never rewrites the project's ``dvc.yaml``; the stage declares
    the metrics and plots itself.
    """

    def __init__(self, live_dir: str | Path, resume: bool = False) -> None:
        self.live_dir = Path(live_dir)
        self.resume = resume
        self.live = None

    def _live(self, state) -> Any:
        if self.live is None and state.is_world_process_zero:
            from dvclive import Live

            self.live = Live(str(self.live_dir), dvcyaml=False, save_dvc_exp=False, resume=self.resume)
        return self.live

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 - HF callback signature
        live = self._live(state)
        if live is None or not logs:
            return
        live.step = state.global_step
        for key, value in logs.items():
            if isinstance(value, (int, float)) and math.isfinite(value) and not key.endswith(("runtime", "per_second", "total_flos")):
                name = key if key.startswith(("eval", "train")) else f"train/{key}"
                live.log_metric(name.replace("eval_", "eval/"), value)
        live.make_summary()

    def on_train_end(self, args, state, control, **kwargs):
        if self.live is not None:
            self.live.end()


def save_model_dir(
    out_dir: str | Path,
    model: PreTrainedModel | None,
    tokenizer: PreTrainedTokenizerBase | None,
    resolved_params: Mapping[str, Any],
    extra_json: Mapping[str, Any] | None = None,
) -> None:
    """Save a ``from_pretrained``-loadable model dir atomically, with ``params.json`` beside it.

    The tokenizer's ``local_files_only`` load flag (set by ``HF_HUB_OFFLINE``) is not saved, so the
    dir's bytes do not depend on the environment of the run that wrote it.
    """
    with atomic_dir(out_dir) as tmp:
        if model is not None:
            model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.init_kwargs.pop("local_files_only", None)
            tokenizer.save_pretrained(tmp)
        (tmp / "params.json").write_text(json.dumps(resolved_params, indent=2, sort_keys=True) + "\n")
        for name, obj in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    logger.info("saved model to %s", out_dir)
