"""Fine-tune a causal LM on Accept/Reject conversations with the gamma-weighted loss (HF Trainer).

One call trains one ``wl_train@<config>`` model: encode the rows (prompt masked, decision
token checked), build the base model (tiny from config, or any hub name / local dir), and run
``transformers.Trainer`` with :class:`lmlab.weighted.loss.WeightedLoss` as ``compute_loss_func``.
Dynamic padding, DDP under ``torchrun``, DVCLive logging and resuming from a persisted
checkpoint dir all come from the Trainer and :mod:`lmlab.training`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from lmlab.artifacts import json_ready
from lmlab.weighted.data import DecisionExample
from lmlab.weighted.tokens import DecisionVocab, encode_decisions
from lmlab.device import seed_everything, select_runtime
from lmlab.modeling import ModelSpec, build_model
from lmlab.stage import is_main_process
from lmlab.training import (
    LiveMetricsCallback,
    ResumableTrainer,
    TrainingParams,
    checkpoint_to_resume,
    make_training_arguments,
    run_fingerprint,
    save_model_dir,
)
from lmlab.weighted.loss import WeightedLoss, check_loss_settings

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
    data_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train one model and save it (main process) to ``out_dir``; return a small summary."""
    check_loss_settings(gamma, variant, scope)
    tokenizer.padding_side = "right"
    encoded, vocab = encode_decisions(tokenizer, examples, spec.max_positions, data_path)
    loss = WeightedLoss(vocab.accept_ids, vocab.reject_ids, gamma, variant, scope)
    rows = [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in encoded]
    seed_everything(seed)
    runtime = select_runtime(training.device, training.precision)
    model = build_model(spec, tokenizer, seed=seed)
    args = make_training_arguments(training, checkpoint_dir, seed, runtime, do_eval=False,
                                   remove_unused_columns=False)
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    trainer = ResumableTrainer(model=model, args=args, train_dataset=rows, data_collator=collator, compute_loss_func=loss)
    if live_dir is not None:
        trainer.add_callback(LiveMetricsCallback(live_dir))
    n_acc = sum(e.accept for e in encoded)
    logger.info("training on %d rows (%d Accept), gamma %.3g, variant %s, scope %s", len(rows), n_acc, gamma,
                variant, scope)
    resume = checkpoint_to_resume(checkpoint_dir, run_fingerprint(json_ready(dict(resolved_params))), args)
    result = trainer.train(resume_from_checkpoint=resume)
    summary = {
        "train_loss": float(result.training_loss),
        "steps": int(result.global_step),
        "n_rows": len(rows),
        "n_accept": n_acc,
        "gamma": float(gamma),
        "variant": variant,
        "scope": scope,
    }
    if is_main_process():
        save_model_dir(out_dir, trainer.model, tokenizer, resolved_params,
                       {VOCAB_FILE: asdict(vocab), "train_summary.json": summary})
    return summary


def load_vocab(data: Mapping[str, Any]) -> DecisionVocab:
    return DecisionVocab(tuple(data["accept_ids"]), tuple(data["reject_ids"]))
