"""Causal-LM training of the monotonic family: base pre-training and per-arm recovery training.

Protocol: a base LM is (pre)trained on the general text (skipped for real checkpoints such as
Pythia); the **baseline** arm continues training those weights unconstrained, the **monotonic** arm
constrains a copy (:func:`lmlab.monotonic.constraint.make_monotonic`) and recovery-trains it. Both arms see the
same packed blocks in the same order (same seed and data); only their optimisation settings
differ (the upstream's higher learning rate and longer warm-up for the monotone model are params).
Recovery length is ``max_steps`` or, with ``training.epochs`` set, passes over the packed training
blocks (the write-up recovers for 1 epoch; its upstream config 5 baseline / 10 monotone epochs).
Training goes through the one training loop, :func:`lmlab.training.run_training` (HF ``Trainer``, DDP
under torchrun, resumable from a persisted checkpoint dir only for the same params and data).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    default_data_collator,
)
from transformers.trainer_utils import TrainOutput

from lmlab.artifacts import atomic_write_json
from lmlab.device import select_runtime
from lmlab.errors import InputError, ParamsError
from lmlab.modeling import ModelSpec, build_model, save_model_dir
from lmlab.monotonic.constraint import (  # start_model: there so mono_eval imports no Trainer
    MARKER_FILE,
    MonotonicParams,
    min_constrained_weight,
    start_model,
    strip_parametrizations,
)
from lmlab.monotonic.params import (  # moved there (no torch) for the params check; re-exported
    ArmParams,
    PretrainParams,
)
from lmlab.stage import is_main_process
from lmlab.tokenization import load_tokenizer
from lmlab.training import (
    TrainingOutcome,
    TrainingParams,
    TrainingRun,
    make_training_arguments,
    run_training,
)

logger = logging.getLogger(__name__)

__all__ = ["PretrainParams", "ArmParams", "pack_texts", "train_causal_lm", "run_pretrain", "start_model", "run_arm"]


def pack_texts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], block_size: int) -> list[list[int]]:
    """Concatenate ``text <eos>`` token streams and cut them into full blocks of ``block_size`` ids."""
    if block_size < 2:
        raise InputError(f"block_size must be >= 2, got {block_size}.", key="monotonic.block_size")
    stream: list[int] = []
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        stream.extend(ids + [tokenizer.eos_token_id])
    blocks = [stream[i:i + block_size] for i in range(0, len(stream) - block_size + 1, block_size)]
    if not blocks:
        raise InputError(f"the texts hold {len(stream)} tokens, fewer than one block of {block_size}.",
                         key="monotonic.data.text", hint="use a larger corpus or a smaller block_size.")
    return blocks


def _dataset(blocks: list[list[int]]) -> Dataset:
    return Dataset.from_dict({"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks],
                              "labels": blocks})


def train_causal_lm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_texts: Sequence[str],
    valid_texts: Sequence[str],
    training: TrainingParams,
    block_size: int,
    seed: int,
    *,
    resolved_params: Mapping[str, Any],
    inputs: Sequence[str | Path],
    checkpoint_dir: str | Path,
    live_dir: str | Path,
    out_dir: str | Path | None,
    before_save: Callable[[PreTrainedModel, dict[str, float]], Mapping[str, Any]] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainingOutcome:
    """Train ``model`` on packed blocks of ``train_texts`` through :func:`lmlab.training.run_training`.

    ``inputs`` are the paths the texts, tokenizer and base model came from: with
    ``resolved_params`` they make the run's fingerprint. After training, every rank evaluates;
    ``before_save(model, metrics)`` may change the model in place (the monotonic arm bakes its
    constraint) and returns further files of the model dir. The final eval metrics are the outcome's
    ``extra_files["train_metrics.json"]``.
    """
    train_blocks = pack_texts(tokenizer, train_texts, block_size)
    valid_blocks = pack_texts(tokenizer, valid_texts, block_size)
    length = f"{training.epochs:g} epochs" if training.epochs is not None else f"{training.max_steps} steps"
    logger.info("training on %d blocks of %d tokens (%d validation blocks), %s of batch %d",
                len(train_blocks), block_size, len(valid_blocks), length, training.batch_size)
    runtime = select_runtime(training.device, training.precision)
    args = make_training_arguments(training, checkpoint_dir, seed, runtime, train_examples=len(train_blocks),
                                   do_eval=True)
    metrics: dict[str, float] = {}

    def finalize(trainer: Trainer, result: TrainOutput, resumed_from: str | None) -> dict[str, Any]:
        final = trainer.evaluate()
        logger.info("final validation loss %.4f", final["eval_loss"])
        # timings (eval_runtime, *_per_second) differ run to run: keep them out of the saved model dir
        metrics.update({k: float(v) for k, v in final.items()
                        if isinstance(v, (int, float)) and not k.endswith(("_runtime", "_per_second"))})
        extra = dict(before_save(trainer.model, metrics)) if before_save is not None else {}
        return {"train_metrics.json": metrics, **extra}

    run = TrainingRun(model=model, args=args, train_dataset=_dataset(train_blocks), eval_dataset=_dataset(valid_blocks),
                      data_collator=default_data_collator, tokenizer=tokenizer, callbacks=callbacks, finalize=finalize)
    return run_training(run, resolved_params=resolved_params, inputs=inputs, checkpoint_dir=checkpoint_dir,
                        live_dir=live_dir, out_dir=out_dir)


def run_pretrain(
    spec: ModelSpec,
    tokenizer_dir: str | Path,
    splits: dict[str, list[str]],
    params: PretrainParams,
    block_size: int,
    seed: int,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    live_dir: str | Path,
    resolved_params: dict,
    inputs: Sequence[str | Path],
) -> None:
    """Build the base LM (tiny config or pretrained checkpoint), train it if enabled, save it.

    ``inputs``: the split files the texts came from (the tokenizer dir and a local base-model dir
    are added here).
    """
    tokenizer = load_tokenizer(tokenizer_dir)
    model = build_model(spec, tokenizer, seed)
    if params.enabled:
        train_causal_lm(model, tokenizer, splits["train"], splits["valid"], params.training, block_size, seed,
                        resolved_params=resolved_params, inputs=[*inputs, tokenizer_dir, Path(spec.name)],
                        checkpoint_dir=checkpoint_dir, live_dir=live_dir, out_dir=out_dir)
        return
    logger.info("pretraining disabled: the base model %s is used as is", spec.name)
    if is_main_process():
        # mono_pretrain declares the checkpoints dir as an output: DVC fails the stage when it does not exist
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(live_dir) / "metrics.json", {"skipped": True})
        save_model_dir(out_dir, model, tokenizer, resolved_params, {"train_metrics.json": {"skipped": 1.0}})


def run_arm(
    pretrained_dir: str | Path,
    arm: ArmParams,
    constraint: MonotonicParams,
    splits: dict[str, list[str]],
    block_size: int,
    seed: int,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    live_dir: str | Path,
    resolved_params: dict,
    inputs: Sequence[str | Path],
    callbacks: Sequence[TrainerCallback] = (),
) -> None:
    """Recovery-train one arm from the pretrained base; the monotonic arm is constrained first.

    The saved monotone model has plain (baked, non-negative) weights and a ``monotonic.json``
    marker; the baseline copy is checked to carry no parametrization. ``inputs``: the split files
    the texts came from (the pretrained base dir is added here).
    """
    if arm.constrained and arm.training.lora.enabled:
        # a LoRA delta B @ A is added outside the non-negativity parametrization: W + BA can be negative
        raise ParamsError("the monotonic arm cannot train a LoRA adapter: the adapter's update is not constrained "
                          "to non-negative weights, so the trained model would not be monotone.",
                          key="monotonic.arms.monotonic.training.lora.rank", hint="set it to 0 (LoRA stays available "
                          "to the baseline arm and the other families)")
    tokenizer = load_tokenizer(pretrained_dir)
    model, summary = start_model(pretrained_dir, arm.constrained, constraint)

    def bake(trained: PreTrainedModel, metrics: dict[str, float]) -> dict[str, Any]:
        if summary is None:
            return {}
        summary["min_weight_after_training"] = min_constrained_weight(trained)
        logger.info("min constrained weight: %.3g before, %.3g after training",
                    summary["min_weight_before_training"], summary["min_weight_after_training"])
        strip_parametrizations(trained)
        return {MARKER_FILE: summary}

    train_causal_lm(model, tokenizer, splits["train"], splits["valid"], arm.training, block_size, seed,
                    resolved_params=resolved_params, inputs=[*inputs, pretrained_dir], checkpoint_dir=checkpoint_dir,
                    live_dir=live_dir, out_dir=out_dir, before_save=bake, callbacks=callbacks)
