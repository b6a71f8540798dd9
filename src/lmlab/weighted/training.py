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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase, Trainer, TrainerCallback
from transformers.trainer_utils import TrainOutput

from lmlab.artifacts import json_ready
from lmlab.chat import use_chat_template
from lmlab.device import seed_everything, select_runtime
from lmlab.modeling import ModelSpec, build_model
from lmlab.training import TrainingParams, TrainingRun, make_training_arguments, run_training
from lmlab.weighted.data import DecisionExample
from lmlab.weighted.loss import WeightedLoss, check_loss_settings
from lmlab.weighted.tokens import DecisionVocab, encode_decisions

logger = logging.getLogger(__name__)

__all__ = ["train_weighted", "load_vocab", "VOCAB_FILE"]

VOCAB_FILE = "decision_vocab.json"


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
) -> dict[str, Any]:
    """Train one model through :func:`lmlab.training.run_training`; return a small summary.

    ``inputs`` are the paths the examples and the tokenizer were read from (the training JSONL,
    the tokenizer dir): their bytes join ``resolved_params`` in the run's fingerprint, so a killed
    run resumes only on the same data. ``data_path`` names the JSONL in error messages.
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
    args = make_training_arguments(training, checkpoint_dir, seed, runtime, train_examples=len(rows), do_eval=False,
                                   remove_unused_columns=False)
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
        model=model, args=args, train_dataset=rows, tokenizer=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        trainer_kwargs={"compute_loss_func": loss}, callbacks=callbacks, finalize=finalize,
    )
    outcome = run_training(run, resolved_params=json_ready(resolved), inputs=inputs,
                           checkpoint_dir=checkpoint_dir, live_dir=live_dir, out_dir=out_dir)
    return {**summary, "resumed_from": Path(outcome.resumed_from).name if outcome.resumed_from else None}


def load_vocab(data: Mapping[str, Any]) -> DecisionVocab:
    return DecisionVocab(tuple(data["accept_ids"]), tuple(data["reject_ids"]))
