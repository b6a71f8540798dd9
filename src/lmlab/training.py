"""The one training loop: fingerprint -> resume -> train -> save, with live metrics, for every family.

Every family trains through :func:`run_training`, which runs ``transformers.Trainer`` (or a
subclass such as ``Seq2SeqTrainer``), so the same stage runs on one CPU, one GPU or N GPUs under
``torchrun``/``accelerate launch`` with no code change, and only the main process writes outputs.
A family supplies only what differs (:class:`TrainingRun`: model, datasets, collator, Trainer
subclass or loss, callbacks, and a ``finalize`` step that names the extra files of its model dir);
the loop owns the sequence, so no family can skip the fingerprint of its inputs (see
:mod:`lmlab.resume`) or forget to resume its DVCLive curves.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Seq2SeqTrainer,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import TrainOutput

from lmlab.adapters import add_lora, is_peft_model, merge_adapter
from lmlab.device import Runtime
from lmlab.errors import ParamsError
from lmlab.modeling import save_model_dir
from lmlab.progress import attach_trainer_progress, progress_bars
from lmlab.resume import StrictResumeMixin, checkpoint_to_resume, run_fingerprint
from lmlab.training_params import TrainingParams  # moved there (no torch) for the params check; re-exported

logger = logging.getLogger(__name__)

__all__ = [
    "TrainingParams",
    "TrainingRun",
    "TrainingOutcome",
    "run_training",
    "LiveMetricsCallback",
    "ResumableTrainer",
    "ResumableSeq2SeqTrainer",
    "make_training_arguments",
    "resolve_max_steps",
    "steps_for_epochs",
    "accumulation_for",
    "current_world_size",
]

def current_world_size() -> int:
    """Processes of this run (``WORLD_SIZE`` set by torchrun; 1 for a plain process)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def accumulation_for(params: TrainingParams, processes: int) -> int:
    """Micro-batches each of ``processes`` accumulates to keep the params' global batch.

    The global batch is ``batch_size x grad_accum``; W processes each run ``grad_accum / W``
    micro-batches of ``batch_size``, so the optimiser sees the same number of examples per step (and,
    with accelerate's sharded sampler, the same examples) on any world size.
    """
    if processes <= 0:
        raise ValueError(f"processes: must be positive, got {processes}")
    if params.grad_accum % processes:
        raise ParamsError(
            f"the global batch is batch_size x grad_accum = {params.batch_size} x {params.grad_accum} = "
            f"{params.batch_size * params.grad_accum} examples per optimiser step, and {processes} processes "
            f"cannot share it: grad_accum ({params.grad_accum}) is not a multiple of the process count.",
            key="grad_accum",
            hint=f"set grad_accum to a multiple of {processes} (and divide batch_size to keep the global batch), "
            "or launch a number of processes that divides grad_accum (LMLAB_NUM_PROCESSES)")
    return params.grad_accum // processes


def steps_for_epochs(epochs: float, train_examples: int, batch_size: int, grad_accum: int = 1,
                     world_size: int = 1) -> int:
    """Optimiser steps of ``epochs`` passes over ``train_examples`` (at least one step).

    One epoch is what the Trainer's dataloader yields: ``ceil(n / (batch_size * world_size))``
    batches per process (the last one partial), grouped into optimiser steps of ``grad_accum``
    batches. A fractional epoch rounds up to whole steps.
    """
    if train_examples <= 0:
        raise ValueError(f"epochs need a non-empty training set, got {train_examples} examples")
    batches = math.ceil(train_examples / (batch_size * world_size))
    steps_per_epoch = max(batches // grad_accum, 1)
    return max(math.ceil(epochs * steps_per_epoch), 1)


def resolve_max_steps(params: TrainingParams, train_examples: int | None, world_size: int | None = None) -> int:
    """``params.max_steps``, or the steps of ``params.epochs`` over ``train_examples`` examples."""
    if params.epochs is None:
        return params.max_steps
    if train_examples is None:
        raise ValueError("epochs: this training stage cannot count its training examples; set epochs: null "
                         "and use max_steps")
    processes = world_size if world_size is not None else current_world_size()
    accumulation = accumulation_for(params, processes)
    steps = steps_for_epochs(params.epochs, train_examples, params.batch_size, accumulation, processes)
    logger.info("%g epochs of %d examples (batch %d x accumulation %d x %d processes) = %d steps",
                params.epochs, train_examples, params.batch_size, accumulation, processes, steps)
    return steps


def make_training_arguments(
    params: TrainingParams,
    output_dir: str | Path,
    seed: int,
    runtime: Runtime,
    *,
    train_examples: int | None = None,
    do_eval: bool = True,
    metric_for_best_model: str | None = None,
    greater_is_better: bool = False,
    group_by_length: bool = False,
    remove_unused_columns: bool = True,
    cls: type[TrainingArguments] = TrainingArguments,
    **extra: Any,
) -> TrainingArguments:
    """``TrainingArguments`` from our params: step-based eval/save, clipping, schedule, seeds.

    ``train_examples`` (the training set's size) turns ``params.epochs`` into steps; warm-up is a
    fraction of the resolved step count either way.
    """
    report_to = ["tensorboard"] if params.tensorboard else "none"
    max_steps = resolve_max_steps(params, train_examples)
    accumulation = accumulation_for(params, current_world_size())
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.eval_batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=params.lr,
        lr_scheduler_type=params.lr_scheduler,
        warmup_steps=int(math.ceil(params.warmup_ratio * max_steps)),
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
        disable_tqdm=not progress_bars(),  # no terminal: progress log lines (lmlab.progress), not \r bars
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
    if params.gradient_checkpointing:
        # non-reentrant checkpointing also works when the inputs need no grad (a frozen base under LoRA)
        # (transformers 5 calls gradient checkpointing "activation checkpointing")
        kwargs.update(activation_checkpointing=True, activation_checkpointing_kwargs={"use_reentrant": False})
    kwargs.update(extra)
    args = cls(**kwargs)
    if params.lora.enabled:
        # run_training wraps the family's model in the adapter: every family gets LoRA from its params
        setattr(args, LORA_ATTRIBUTE, params.lora)
    return args


# Attribute of the TrainingArguments that carries a section's LoRA settings to run_training.
LORA_ATTRIBUTE = "lmlab_lora"


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


@dataclass
class TrainingRun:
    """What differs between families; :func:`run_training` does everything else.

    ``trainer_kwargs`` go to ``trainer_class`` as they are (``compute_loss_func``, a family
    Trainer's own arguments). ``finalize(trainer, result, resumed_from)`` runs on every rank after training (a
    final ``evaluate()`` must) and returns the extra JSON files of the model dir, by name; it may
    change the model in place before it is saved (the monotonic arm bakes its constraint).
    """

    model: PreTrainedModel
    args: TrainingArguments
    train_dataset: Any
    eval_dataset: Any = None
    data_collator: Any = None
    tokenizer: PreTrainedTokenizerBase | None = None
    trainer_class: type[Trainer] = ResumableTrainer
    trainer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    callbacks: Sequence[TrainerCallback] = ()
    finalize: Callable[[Trainer, TrainOutput, str | None], Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class TrainingOutcome:
    """What a finished run returns: the trainer (final model and state), where it resumed from."""

    trainer: Trainer
    result: TrainOutput
    resumed_from: str | None
    fingerprint: str
    extra_files: Mapping[str, Any]

    @property
    def model(self) -> PreTrainedModel:
        return self.trainer.model


def run_training(
    run: TrainingRun,
    *,
    resolved_params: Mapping[str, Any],
    inputs: Sequence[str | Path],
    checkpoint_dir: str | Path,
    live_dir: str | Path | None,
    out_dir: str | Path | None,
    on_start: Callable[[str | None], None] | None = None,
) -> TrainingOutcome:
    """Fingerprint -> resume -> train -> finalize -> save: the one training sequence of lmlab.

    1. The run's fingerprint covers ``resolved_params`` and the bytes of every path in ``inputs``
       (training/validation data, tokenizer and base-model dirs): the persisted checkpoint dir is
       resumed only when it was written for the same fingerprint, and wiped otherwise.
    2. DVCLive (``live_dir``) continues its curves when the run resumes and restarts them when not;
       ``on_start(resumed_from)`` runs once the decision is known (main process only), for family logs.
    3. ``run.trainer_class`` trains, resuming from the checkpoint, then ``run.finalize`` names the
       extra files, and the main process saves a ``from_pretrained``-loadable dir to ``out_dir``
       (model, tokenizer, ``params.json`` = ``resolved_params``, extra files) atomically.
    """
    lora = getattr(run.args, LORA_ATTRIBUTE, None)
    if lora is not None and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        raise ParamsError("a LoRA adapter (lora.rank > 0) under launcher.strategy fsdp is not supported yet (its save "
                          "is untested).", key="lora.rank",
                          hint="use launcher.strategy ddp (LoRA's memory already fits a 7B under DDP) or deepspeed")
    if lora is not None and not is_peft_model(run.model):
        run = replace(run, model=add_lora(run.model, lora))
    fingerprint = run_fingerprint(dict(resolved_params), inputs)
    resume = checkpoint_to_resume(checkpoint_dir, fingerprint, run.args)
    if on_start is not None and run.args.process_index == 0:
        on_start(resume)
    callbacks = [LiveMetricsCallback(live_dir, resume=resume is not None)] if live_dir is not None else []
    trainer = run.trainer_class(
        model=run.model, args=run.args, train_dataset=run.train_dataset, eval_dataset=run.eval_dataset,
        data_collator=run.data_collator, processing_class=run.tokenizer, callbacks=callbacks + list(run.callbacks),
        **dict(run.trainer_kwargs),
    )
    attach_trainer_progress(trainer)  # no terminal: the Trainer's progress as log lines (lmlab.progress)
    logger.info("training %s (%s) into %s%s", type(run.model).__name__, trainer.__class__.__name__, checkpoint_dir,
                f", resuming from {Path(resume).name}" if resume else "")
    result = trainer.train(resume_from_checkpoint=resume)
    extra = dict(run.finalize(trainer, result, resume)) if run.finalize is not None else {}
    model, state_dict = trainer.model, None
    if out_dir is not None and getattr(trainer, "is_fsdp_enabled", False):
        # under FSDP trainer.model is the sharded wrapper: every rank joins in gathering the full state
        # dict (rank 0 gets it), then rank 0 saves the unwrapped model with it (not run on CPU: docs/scaling.md)
        state_dict = trainer.accelerator.get_state_dict(model)
        model = trainer.accelerator.unwrap_model(model)
    if out_dir is not None and trainer.is_world_process_zero():
        if lora is not None and lora.save == "merged" and is_peft_model(model) and state_dict is None:
            model = merge_adapter(model)  # an ordinary model dir: later stages load it as any other
        save_model_dir(out_dir, model, run.tokenizer, resolved_params, extra, state_dict=state_dict)
    return TrainingOutcome(trainer, result, resume, fingerprint, extra)
