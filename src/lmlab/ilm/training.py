"""Training an infilling LM (ILM) with the HF ``Trainer``: per-type losses, evals, samples, resume.

What differs from the reference ``train_ilm.py`` (and why):

- batches are padded dynamically to their longest example, grouped by length, with an attention
  mask (the reference pads everything to 256 with no mask; learner texts are ~70-100 tokens, so
  most of its compute was padding);
- the loss is ``loss: sum_of_means`` (reference: mean infill NLL + mean context NLL) or
  ``token_mean``; ``train_context: false`` trains on infill tokens only;
- eval runs at step 0 (before the first update, as the reference's wall-clock cadence does and as
  the lab's write-up reports it) and then every ``eval_steps`` optimiser steps, and reports
  ``context`` / ``infill`` / ``infill_textonly`` losses and token counts plus a few greedy infill
  samples (logged and appended to ``samples.jsonl`` in the DVCLive dir); a resumed run does not
  repeat the step-0 eval, whose numbers survive in the checkpoint's trainer state;
- the training length is ``ilm.train.trainer`` (steps or epochs) unless the level's own budget
  (``ilm.budget.<level>``, :class:`LevelBudget`) says otherwise: the write-up trains every level
  for its own number of steps (or one epoch each);
- checkpoints are written every ``save_steps`` and at the end; the final model is the checkpoint
  with the **best eval infill loss** (``load_best_model_at_end``), as the reference keeps only the
  best; a run killed mid-way resumes from the persisted checkpoint dir. The checkpoint dir carries a
  fingerprint of the params and data, and is wiped when they change, so stale state never leaks
  into a run with new settings.

Learning rate: the tiny default models use a large lr (see params.yaml); for a real GPT-2 the lab's
advice for learner text is 2.5e-5 (the reference default is 5e-5).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase, StoppingCriteriaList, Trainer
from transformers.trainer_utils import TrainOutput

from lmlab.artifacts import remove_path
from lmlab.config import params_to_dict
from lmlab.device import select_runtime
from lmlab.errors import InputError
from lmlab.ilm.format import START_INFILL, fill_context
from lmlab.ilm.infill import StopAfterAnswers
from lmlab.ilm.params import (  # moved there (no torch) for the params check; re-exported
    IlmTrainParams,
    LevelBudget,
    TransferParams,
)
from lmlab.ilm.sequences import (
    LOSS_KINDS,
    SPECIAL_TOKENS_FILE,
    IlmCollator,
    IlmTokens,
    TargetType,
    build_dataset,
    combine_losses,
    per_example_sums,
    sample_example_refs,
    token_nll,
)
from lmlab.modeling import ModelSpec, build_model
from lmlab.training import (
    ResumableTrainer,
    TrainingParams,
    TrainingRun,
    make_training_arguments,
    run_training,
)

logger = logging.getLogger(__name__)

__all__ = ["IlmTrainParams", "LevelBudget", "TransferParams", "apply_budget", "apply_transfer", "IlmTrainer",
           "summarize_sums", "step0_eval", "generate_infills", "train_ilm"]


def apply_budget(params: IlmTrainParams, budget: LevelBudget) -> IlmTrainParams:
    """``params`` with the level's training length (a set field replaces the trainer's length entirely)."""
    if budget.inherits:
        return params
    return replace(params, trainer=_with_length(params.trainer, budget.max_steps, budget.epochs))


def _with_length(trainer: TrainingParams, max_steps: int | None, epochs: float | None) -> TrainingParams:
    """The trainer settings with a length in steps (``epochs`` cleared) or in epochs."""
    if epochs is not None:
        return replace(trainer, epochs=epochs)
    return replace(trainer, max_steps=max_steps, epochs=None)


def apply_transfer(
    spec: ModelSpec, params: IlmTrainParams, transfer: TransferParams, init_from: str | Path,
    resolved: Mapping[str, Any],
) -> tuple[ModelSpec, IlmTrainParams, dict[str, Any]]:
    """The transfer variant's base model, optimisation settings and resolved params.

    The general model at ``init_from`` is fine-tuned for ``transfer.max_steps`` (or ``transfer.epochs``)
    at ``transfer.lr``
    (``None``: the level models' lr). The level list is not recorded, so adding a level to
    ``ilm.transfer.levels`` leaves the existing transfer models' bytes alone.
    """
    trainer = replace(_with_length(params.trainer, transfer.max_steps, transfer.epochs),
                      lr=transfer.lr or params.trainer.lr)
    params = replace(params, trainer=trainer)
    updated = {**resolved, "transfer": {"max_steps": transfer.max_steps, "epochs": transfer.epochs, "lr": transfer.lr},
               "init_from": str(init_from), "train": params_to_dict(params)}
    return replace(spec, name=str(init_from)), params, updated


def summarize_sums(sums: torch.Tensor | Sequence[float], prefix: str = "eval") -> dict[str, float]:
    """Metrics from summed ``[nll, count] x LOSS_KINDS`` (count-weighted per-token means, ppl = exp)."""
    values = [float(v) for v in sums]
    metrics: dict[str, float] = {}
    for i, kind in enumerate(LOSS_KINDS):
        total, count = values[2 * i], values[2 * i + 1]
        loss = total / count if count else float("nan")
        metrics[f"{prefix}_{kind}_loss"] = loss
        metrics[f"{prefix}_{kind}_count"] = count
        metrics[f"{prefix}_{kind}_ppl"] = float(torch.tensor(loss).exp()) if count else float("nan")
    return metrics


def eval_history(log_history: Sequence[Mapping[str, Any]], prefix: str = "eval") -> dict[int, dict[str, float]]:
    """Per-kind eval losses and token counts by step, from a Trainer's ``state.log_history``.

    The history lives in every checkpoint's ``trainer_state.json``, so a resumed run still knows its
    step-0 eval without repeating it.
    """
    keys = [f"{kind}_{what}" for kind in LOSS_KINDS for what in ("loss", "count")]
    history: dict[int, dict[str, float]] = {}
    for entry in log_history:
        if f"{prefix}_infill_loss" in entry and "step" in entry:
            history[int(entry["step"])] = {key: entry[f"{prefix}_{key}"] for key in keys if f"{prefix}_{key}" in entry}
    return history


def step0_eval(log_history: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """The eval before the first update (None when the run had none)."""
    return eval_history(log_history).get(0)


@torch.no_grad()
def generate_infills(model, tokenizer: PreTrainedTokenizerBase, tokens: IlmTokens, context_ids: Sequence[int],
                     max_new_tokens: int) -> list[str]:
    """Greedy answers for one context (ids ending with ``<|startofinfill|>``), one string per blank."""
    n_blanks = sum(1 for i in context_ids if i in set(tokens.masks.values()))
    prompt = torch.tensor([list(context_ids)], device=model.device)
    out = model.generate(
        prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=max_new_tokens, do_sample=False,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=None,
        stopping_criteria=StoppingCriteriaList([StopAfterAnswers(tokens.end_infill, prompt.shape[1], n_blanks)]),
    )[0, prompt.shape[1]:].tolist()
    answers, current = [], []
    for tok in out:
        if tok == tokens.end_infill:
            answers.append(tokenizer.decode(current))
            current = []
        else:
            current.append(tok)
    return answers[:n_blanks]


@contextmanager
def _rng_preserved() -> Iterator[None]:
    """Restore the python, numpy and torch (CPU and CUDA) random states on exit."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(py_state)
    np.random.set_state(np_state)


class IlmTrainer(ResumableTrainer):
    """``Trainer`` with the ILM loss and an eval that reports per-type losses and logs samples."""

    loss_is_scaled_for_ga = False  # compute_loss returns a batch mean: let Trainer divide by grad_accum

    def __init__(self, *args: Any, train_context: bool, loss_mode: str, ilm_tokens: IlmTokens,
                 samples: Sequence[Mapping[str, Any]] = (), samples_path: Path | None = None,
                 sample_max_new_tokens: int = 48, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.train_context, self.loss_mode, self.ilm_tokens = train_context, loss_mode, ilm_tokens
        self.samples, self.samples_path, self.sample_max_new_tokens = list(samples), samples_path, sample_max_new_tokens

    def train(self, resume_from_checkpoint=None, *args: Any, **kwargs: Any):
        """Train, evaluating first at step 0 on a fresh run only (a resumed run already logged it).

        Every rank makes the same decision (``resume_from_checkpoint`` is decided before the Trainer
        exists), so the step-0 eval's collective gathers never deadlock under ``torchrun``.
        """
        self.args.eval_on_start = not resume_from_checkpoint
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        nll, types = token_nll(outputs.logits, inputs["input_ids"], inputs["target_types"])
        loss = combine_losses(nll, types, self.train_context, self.loss_mode)
        return (loss, outputs) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        if self.state.global_step == 0:
            # Iterating a DataLoader draws its base seed from the global RNG. The step-0 eval runs
            # before the first training batch, so without this the eval would shift the epoch's
            # shuffle, and a resumed run (which replays the order from the seed) would diverge.
            with _rng_preserved():
                return self._evaluate_losses(eval_dataset, metric_key_prefix)
        return self._evaluate_losses(eval_dataset, metric_key_prefix)

    def _evaluate_losses(self, eval_dataset, metric_key_prefix: str) -> dict[str, float]:
        model = self.model
        was_training = model.training
        model.eval()
        sums = torch.zeros(2 * len(LOSS_KINDS), dtype=torch.float64)
        with torch.no_grad():
            for batch in self.get_eval_dataloader(eval_dataset):
                batch = self._prepare_inputs(batch)
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                per_example = per_example_sums(*token_nll(logits, batch["input_ids"], batch["target_types"]))
                sums += self.accelerator.gather_for_metrics(per_example).double().sum(dim=0).cpu()
        metrics = summarize_sums(sums, metric_key_prefix)
        if self.is_world_process_zero():
            self._log_samples(model)
        model.train(was_training)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _log_samples(self, model) -> None:
        rows = []
        for index, sample in enumerate(self.samples):
            answers = generate_infills(model, self.processing_class, self.ilm_tokens, sample["context_ids"],
                                       self.sample_max_new_tokens)
            rows.append({"step": self.state.global_step, "index": index, "context": sample["context"],
                         "predicted": answers, "reference": sample["reference"]})
            logger.info("sample %d @ step %d: %s", index, self.state.global_step,
                        fill_context(sample["context"], [f"[{a}]" for a in answers]))
        if self.samples_path is not None and rows:
            self.samples_path.parent.mkdir(parents=True, exist_ok=True)
            with self.samples_path.open("a", encoding="utf-8") as handle:
                handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _sample_prompts(dataset, tokenizer, tokens: IlmTokens, n: int) -> list[dict[str, Any]]:
    """The first ``n`` eval examples with at least one blank: context ids (up to the sep) and reference answers."""
    prompts = []
    for row in dataset:
        if len(prompts) >= n:
            break
        if row["n_spans"] == 0 or TargetType.SEP not in row["target_types"]:
            continue
        sep = row["target_types"].index(TargetType.SEP)
        ids = row["input_ids"]
        reference, current = [], []
        for tok in ids[sep + 1:]:
            if tok == tokens.end_infill:
                reference.append(tokenizer.decode(current))
                current = []
            else:
                current.append(tok)
        prompts.append({"context_ids": ids[: sep + 1], "context": tokenizer.decode(ids[:sep]),
                        "reference": reference})
    return prompts


def train_ilm(
    train_masked: Sequence[Any],
    valid_masked: Sequence[Any],
    tokenizer: PreTrainedTokenizerBase,
    spec: ModelSpec,
    params: IlmTrainParams,
    seed: int,
    *,
    checkpoint_dir: str | Path,
    live_dir: str | Path | None,
    out_dir: str | Path | None,
    resolved_params: Mapping[str, Any],
    inputs: Sequence[str | Path],
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train one ILM on masked examples and save the best-eval-infill-loss model to ``out_dir``.

    ``spec`` is the base model (a tiny config, a hub name or a local dir such as the general model
    for the transfer variant). ``inputs`` are the paths the examples, the tokenizer and a local base
    model came from: with ``resolved_params`` they make the run's fingerprint (a killed run resumes
    only on the same bytes). Training goes through :func:`lmlab.training.run_training`. Returns a
    summary (best metric, steps, data statistics).
    """
    checkpoint_dir = Path(checkpoint_dir)
    tokens = IlmTokens.from_tokenizer(tokenizer)
    if params.max_length > spec.max_positions and spec.tiny:
        raise InputError(f"ilm.train.max_length ({params.max_length}) exceeds ilm.model.max_positions "
                         f"({spec.max_positions}).", key="ilm.train.max_length")
    train_ds = build_dataset(train_masked, tokenizer, tokens, params.max_length, desc="encode ILM train",
                             refs=sample_example_refs(train_masked, params.max_train_examples, seed))
    eval_ds = build_dataset(valid_masked, tokenizer, tokens, params.max_length, desc="encode ILM valid",
                            refs=sample_example_refs(valid_masked, params.max_eval_examples, seed))
    samples = _sample_prompts(eval_ds, tokenizer, tokens, params.num_samples)
    lengths = eval_ds["length"]
    eval_ds = eval_ds.select(sorted(range(len(lengths)), key=lengths.__getitem__))  # batches with less padding

    runtime = select_runtime(params.trainer.device, params.trainer.precision)
    args = make_training_arguments(
        params.trainer, checkpoint_dir, seed, runtime,
        train_examples=len(train_ds) if params.epoch_unit == "examples" else len(train_masked), do_eval=True,
        metric_for_best_model="eval_infill_loss",
        greater_is_better=False, group_by_length=params.group_by_length, remove_unused_columns=False,
        length_column_name="length",
    )
    samples_path = Path(live_dir) / "samples.jsonl" if live_dir else None

    def on_start(resumed_from: str | None) -> None:
        if samples_path is not None and not resumed_from:
            remove_path(samples_path)  # a fresh run's samples do not continue an old run's

    summary: dict[str, Any] = {}

    def finalize(trainer: Trainer, result: TrainOutput, resumed_from: str | None) -> dict[str, Any]:
        state = trainer.state
        history = eval_history(state.log_history)
        best = Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None
        best_step = int(best.rsplit("-", 1)[1]) if best else None
        summary.update({
            "final_model": "best eval_infill_loss checkpoint (load_best_model_at_end)",
            "best_eval_infill_loss": state.best_metric,
            "best_checkpoint": best,
            "global_step": state.global_step,
            "max_steps": state.max_steps,
            "eval_step0": history.get(0),
            "eval_best": history.get(best_step) if best_step is not None else None,
            "eval_last": history[max(history)] if history else None,
            "resumed_from": Path(resumed_from).name if resumed_from else None,
            "train_examples": len(train_ds),
            "train_examples_split_boundary": int(sum(train_ds["split_boundary"])),
            "train_examples_truncated": int(sum(train_ds["truncated"])),
            "eval_examples": len(eval_ds),
        })
        logger.info("ILM training done: %s", summary)
        special_map = {
            "bos_token": tokenizer.bos_token, "eos_token": tokenizer.eos_token, "pad_token": tokenizer.pad_token,
            "unk_token": tokenizer.unk_token, "sep_token": START_INFILL,
            "additional_special_tokens": list(tokens.id_to_token().values()),
        }
        return {SPECIAL_TOKENS_FILE: tokens.id_to_token(), "special_tokens_map.json": special_map,
                "training_summary.json": summary}

    run = TrainingRun(
        model=build_model(spec, tokenizer, seed), args=args, train_dataset=train_ds, eval_dataset=eval_ds,
        data_collator=IlmCollator(tokenizer.pad_token_id), tokenizer=tokenizer, trainer_class=IlmTrainer,
        trainer_kwargs=dict(train_context=params.train_context, loss_mode=params.loss, ilm_tokens=tokens,
                            samples=samples, samples_path=samples_path,
                            sample_max_new_tokens=params.sample_max_new_tokens),
        callbacks=callbacks, finalize=finalize,
    )
    run_training(run, resolved_params=resolved_params, inputs=inputs, checkpoint_dir=checkpoint_dir,
                 live_dir=live_dir, out_dir=out_dir, on_start=on_start)
    return summary
