"""Fine-tune a causal LM on Accept/Reject conversations with the gamma-weighted loss (HF Trainer).

One call trains one ``wl_train@<config>`` model: encode the rows (prompt masked, decision
token checked), build the base model (tiny from config, or any hub name / local dir), and run
``transformers.Trainer`` with :class:`lmlab.weighted.loss.WeightedLoss` as ``compute_loss_func``.
Dynamic padding, DDP under ``torchrun``, DVCLive logging, resuming from a persisted
checkpoint dir (only for the same params and data) and saving all come from the one training loop,
:func:`lmlab.training.run_training`.

``chat_template`` (``weighted.prompt``) picks the prompt format (:mod:`lmlab.chat`). When the
tokenizer's template is used, ``train_summary.json`` and ``params.json`` say ``"chat_template":
true`` and ``wl_eval`` formats the test rows the same way; the plain layout writes no such key,
so model dirs of the plain layout are unchanged (byte for byte) by the option's existence.

With evaluation rows (the balanced test set in the pipeline) the Trainer also evaluates every
``eval_steps`` and logs ``eval/decision_nll``: the **unweighted** mean NLL of the gold decision
token, the one training curve that is comparable across gammas (the train loss and the Trainer's
own ``eval/loss`` are gamma-weighted). It is only watched: nothing selects on it, and evaluating
consumes no random numbers, so the trained weights are the same with or without it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    DataCollatorForSeq2Seq,
    EvalPrediction,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
)
from transformers.trainer_utils import TrainOutput

from lmlab.artifacts import json_ready
from lmlab.chat import use_chat_template
from lmlab.device import seed_everything, select_runtime
from lmlab.modeling import ModelSpec, build_model
from lmlab.training import TrainingParams, TrainingRun, make_training_arguments, run_training
from lmlab.weighted.data import DecisionExample
from lmlab.weighted.loss import WeightedLoss, check_loss_settings, find_decisions
from lmlab.weighted.tokens import DecisionVocab, encode_decisions

logger = logging.getLogger(__name__)

__all__ = ["train_weighted", "load_vocab", "DecisionNll", "decision_nll_metrics", "VOCAB_FILE"]

VOCAB_FILE = "decision_vocab.json"


class DecisionNll:
    """``preprocess_logits_for_metrics``: per row, ``-log softmax(logits)[gold decision token]`` at the
    decision position (unweighted, over the whole vocabulary), so the Trainer gathers one number
    per row instead of the full logits."""

    def __init__(self, vocab: DecisionVocab) -> None:
        self.accept_ids = torch.tensor(vocab.accept_ids)
        self.reject_ids = torch.tensor(vocab.reject_ids)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if isinstance(logits, tuple):
            logits = logits[0]
        shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
        pos, _ = find_decisions(shift_labels, self.accept_ids.to(labels.device), self.reject_ids.to(labels.device))
        rows = torch.arange(len(pos), device=pos.device)
        log_probs = torch.log_softmax(shift_logits[rows, pos].float(), dim=-1)
        return -log_probs[rows, shift_labels[rows, pos]]


def decision_nll_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """``compute_metrics`` over :class:`DecisionNll`'s per-row values: ``decision_nll`` (the mean)."""
    return {"decision_nll": float(np.mean(np.asarray(prediction.predictions, dtype=np.float64)))}


def train_weighted(
    examples: Sequence[DecisionExample],
    tokenizer: PreTrainedTokenizerBase,
    spec: ModelSpec,
    training: TrainingParams,
    *,
    gamma: float,
    variant: str,
    scope: str,
    seed: int,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    live_dir: str | Path | None,
    resolved_params: Mapping[str, Any],
    inputs: Sequence[str | Path],
    data_path: str | Path | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    chat_template: str = "auto",
    eval_examples: Sequence[DecisionExample] = (),
    eval_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train one model through :func:`lmlab.training.run_training`; return a small summary.

    ``inputs`` are the paths the examples and the tokenizer were read from (the training JSONL,
    the tokenizer dir): their bytes join ``resolved_params`` in the run's fingerprint, so a killed
    run resumes only on the same data. ``data_path`` names the JSONL in error messages.
    ``eval_examples`` (read from ``eval_path``) turn on the ``eval/decision_nll`` curve (module docstring).
    """
    check_loss_settings(gamma, variant, scope)
    tokenizer.padding_side = "right"
    chat = use_chat_template(tokenizer, chat_template, key="weighted.prompt.chat_template")
    encoded, vocab = encode_decisions(tokenizer, examples, spec.max_positions, data_path, chat=chat)
    loss = WeightedLoss(vocab.accept_ids, vocab.reject_ids, gamma, variant, scope)
    rows = [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in encoded]
    seed_everything(seed)
    runtime = select_runtime(training.device, training.precision)
    model = build_model(spec, tokenizer, seed=seed)
    eval_rows, eval_kwargs = [], {}
    if eval_examples:  # the unweighted decision NLL, watched during training (module docstring)
        encoded_eval, eval_vocab = encode_decisions(tokenizer, eval_examples, spec.max_positions, eval_path,
                                                       chat=chat)
        eval_rows = [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in encoded_eval]
        both = DecisionVocab(tuple(sorted(set(vocab.accept_ids) | set(eval_vocab.accept_ids))),
                             tuple(sorted(set(vocab.reject_ids) | set(eval_vocab.reject_ids))))
        eval_kwargs = {"compute_metrics": decision_nll_metrics, "preprocess_logits_for_metrics": DecisionNll(both)}
    args = make_training_arguments(training, checkpoint_dir, seed, runtime, train_examples=len(rows),
                                   do_eval=bool(eval_rows), remove_unused_columns=False)
    n_acc = sum(e.accept for e in encoded)
    logger.info("training on %d rows (%d Accept), gamma %.3g, variant %s, scope %s", len(rows), n_acc, gamma,
                variant, scope)
    summary: dict[str, Any] = {"n_rows": len(rows), "n_accept": n_acc, "gamma": float(gamma), "variant": variant,
                               "scope": scope}
    resolved = dict(resolved_params)
    if chat:  # recorded only when used: plain-layout model dirs stay as they were
        summary["chat_template"] = resolved["chat_template"] = True

    def finalize(trainer: Trainer, result: TrainOutput, resumed_from: str | None) -> dict[str, Any]:
        summary.update(train_loss=float(result.training_loss), steps=int(result.global_step))
        return {VOCAB_FILE: asdict(vocab), "train_summary.json": summary}

    run = TrainingRun(
        model=model, args=args, train_dataset=rows, eval_dataset=eval_rows or None, tokenizer=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        trainer_kwargs={"compute_loss_func": loss, **eval_kwargs}, callbacks=callbacks, finalize=finalize,
    )
    outcome = run_training(run, resolved_params=json_ready(resolved), inputs=inputs,
                           checkpoint_dir=checkpoint_dir, live_dir=live_dir, out_dir=out_dir)
    return {**summary, "resumed_from": Path(outcome.resumed_from).name if outcome.resumed_from else None}


def load_vocab(data: Mapping[str, Any]) -> DecisionVocab:
    return DecisionVocab(tuple(data["accept_ids"]), tuple(data["reject_ids"]))
