"""Supervised fine-tuning on (prompt, output) pairs for seq2seq and causal models.

Both kinds see the same prompt (:data:`lmlab.ensemble.data.PROMPT_TEMPLATE`).

* seq2seq: source = prompt, labels = output + EOS, trained with ``Seq2SeqTrainer`` and
  ``DataCollatorForSeq2Seq`` (labels padded with -100).
* causal: input = prompt + " " + output + EOS; labels are -100 on every prompt token and
  on padding, so the loss is on the answer only (the upstream trained on the prompt too and
  appended no EOS, so its model never learnt to stop). ``loss_on_prompt: true`` is the
  write-up's reading ("the full prompt+output for next-token prediction"): labels = input ids
  on the prompt as well; EOS is still appended (the write-up reports nothing that needs the
  model to ramble).
* causal with a chat template (``chat_template: auto`` and a tokenizer that has one, or
  ``always``; :mod:`lmlab.chat`): the prompt is the user turn in the tokenizer's template plus the
  assistant header, the answer the assistant turn (the output) through the template's end-of-turn
  token, EOS appended when that token is not EOS. The prompt's text (not its templated ids) is
  cut to ``max_source_length`` so the header survives. ``loss_on_prompt`` labels the templated
  prompt too. ``params.json`` and ``ensemble_model.json`` say ``"chat_template": true`` when it
  is used (and nothing otherwise), and ``ens_compare`` prompts the same way.

Training goes through the one training loop, :func:`lmlab.training.run_training` (HF Trainer:
DDP under torchrun, DVCLive curves, resume from the persisted checkpoint dir only for the same
params and data, atomic save).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    DataCollatorForSeq2Seq,
    PreTrainedTokenizerBase,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainerCallback,
)
from transformers.trainer_utils import TrainOutput

from lmlab.chat import encode_chat, use_chat_template
from lmlab.config import params_to_dict
from lmlab.device import Runtime, limit_cpu_threads
from lmlab.ensemble.data import (  # there so ens_compare imports no Trainer
    chat_user_turn,
    encode_chat_prompt,
    encode_prompt,
)
from lmlab.ensemble.params import SftModelParams  # moved there (no torch) for the params check; re-exported
from lmlab.modeling import build_model
from lmlab.training import (
    ResumableSeq2SeqTrainer,
    ResumableTrainer,
    TrainingRun,
    make_training_arguments,
    run_training,
)

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100

__all__ = [
    "IGNORE_INDEX",
    "SftModelParams",
    "encode_prompt",
    "encode_chat_prompt",
    "encode_chat_example",
    "encode_causal_example",
    "encode_seq2seq_example",
    "CausalSFTCollator",
    "MeanLossSeq2SeqTrainer",
    "train_instruction_model",
]


def encode_chat_example(
    tokenizer: PreTrainedTokenizerBase, row: dict[str, Any], max_source: int, max_target: int,
    loss_on_prompt: bool = False,
) -> dict[str, list[int]]:
    """Templated prompt + answer (output through the end-of-turn token), labels -100 on the prompt.

    The answer keeps at most ``max_target`` ids; a cut answer still ends with its last id (EOS or
    the end-of-turn token), as the plain layout's does.
    """
    enc = encode_chat(tokenizer, chat_user_turn(tokenizer, row["instruction"], row["input"], max_source),
                      row["output"].strip())
    prompt, target = list(enc.prompt_ids), list(enc.answer_ids)
    if len(target) > max_target:
        target = target[: max_target - 1] + target[-1:]
    return {
        "input_ids": prompt + target,
        "attention_mask": [1] * (len(prompt) + len(target)),
        "labels": (list(prompt) if loss_on_prompt else [IGNORE_INDEX] * len(prompt)) + target,
    }


def _target_ids(tokenizer: PreTrainedTokenizerBase, text: str, max_length: int) -> list[int]:
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])[: max_length - 1]
    return ids + [tokenizer.eos_token_id]


def encode_causal_example(
    tokenizer: PreTrainedTokenizerBase, row: dict[str, Any], max_source: int, max_target: int,
    loss_on_prompt: bool = False,
) -> dict[str, list[int]]:
    """``input_ids`` = prompt + " output" + EOS; ``labels`` = -100 on the prompt, the ids elsewhere.

    ``loss_on_prompt``: labels are the ids on the prompt too (the write-up's plain LM training).
    """
    prompt = encode_prompt(tokenizer, row["instruction"], row["input"], max_source)
    target = _target_ids(tokenizer, " " + row["output"].strip(), max_target)
    return {
        "input_ids": prompt + target,
        "attention_mask": [1] * (len(prompt) + len(target)),
        "labels": (list(prompt) if loss_on_prompt else [IGNORE_INDEX] * len(prompt)) + target,
    }


def encode_seq2seq_example(
    tokenizer: PreTrainedTokenizerBase, row: dict[str, Any], max_source: int, max_target: int
) -> dict[str, list[int]]:
    """Encoder input = prompt + EOS, labels = output + EOS."""
    prompt = encode_prompt(tokenizer, row["instruction"], row["input"], max_source - 1) + [tokenizer.eos_token_id]
    return {
        "input_ids": prompt,
        "attention_mask": [1] * len(prompt),
        "labels": _target_ids(tokenizer, row["output"].strip(), max_target),
    }


class MeanLossSeq2SeqTrainer(ResumableSeq2SeqTrainer):
    """Seq2seq trainer that divides the loss by the accumulation steps.

    T5's ``forward`` takes ``**kwargs``, so transformers 5 assumes it honours ``num_items_in_batch``
    and skips the division by ``grad_accum``; but T5 (like BART) returns a plain batch mean. Without
    this, ``grad_accum: 4`` (the write-up's) sums four micro-batch means: a 4x gradient and a 4x
    logged training loss. With ``grad_accum: 1`` nothing changes.
    """

    loss_is_scaled_for_ga = False


@dataclass
class CausalSFTCollator:
    """Right-pad ``input_ids`` with the pad id, ``labels`` with -100, and build the attention mask."""

    pad_token_id: int

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        batch: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
        for f in features:
            pad = width - len(f["input_ids"])
            batch["input_ids"].append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            batch["attention_mask"].append(list(f["attention_mask"]) + [0] * pad)
            batch["labels"].append(list(f["labels"]) + [IGNORE_INDEX] * pad)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


def train_instruction_model(
    params: SftModelParams,
    train_rows: Sequence[dict[str, Any]],
    valid_rows: Sequence[dict[str, Any]],
    tokenizer: PreTrainedTokenizerBase,
    runtime: Runtime,
    *,
    name: str,
    inputs: Sequence[str | Path],
    checkpoint_dir: str | Path,
    live_dir: str | Path,
    out_dir: str | Path | None,
    callbacks: Sequence[TrainerCallback] = (),
) -> dict[str, Any]:
    """Fine-tune ``params.model`` on the rows through :func:`lmlab.training.run_training`.

    ``inputs`` are the paths the rows and the tokenizer came from (train/valid JSONL, tokenizer
    dir or the local base-model dir): the run resumes a killed run's checkpoint only when their
    bytes and ``params`` are unchanged. The main process saves the model to ``out_dir`` with
    ``ensemble_model.json`` ({name, kind, base, losses}); returns that summary.
    """
    kind = params.kind
    limit_cpu_threads(params.cpu_threads, runtime)
    chat = kind == "causal" and use_chat_template(tokenizer, params.chat_template,  # before loading a big model
                                                  key=f"ensemble.models.{name}.chat_template")
    model = build_model(params.model, tokenizer, seed=params.seed)
    def encode(row: dict[str, Any]) -> dict[str, list[int]]:
        if kind == "seq2seq":
            return encode_seq2seq_example(tokenizer, row, params.max_source_length, params.max_target_length)
        encoder = encode_chat_example if chat else encode_causal_example
        return encoder(tokenizer, row, params.max_source_length, params.max_target_length,
                       loss_on_prompt=params.loss_on_prompt)

    train = [encode(r) for r in train_rows]
    valid = [encode(r) for r in valid_rows]
    if kind == "seq2seq":
        collator: Any = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=IGNORE_INDEX)
        trainer_cls: type[Trainer] = MeanLossSeq2SeqTrainer
        args_cls: Any = Seq2SeqTrainingArguments
    else:
        collator = CausalSFTCollator(tokenizer.pad_token_id)
        trainer_cls, args_cls = ResumableTrainer, None
    extra = {"cls": args_cls} if args_cls else {}
    args = make_training_arguments(
        params.training, checkpoint_dir, params.seed, runtime, train_examples=len(train), do_eval=bool(valid),
        remove_unused_columns=False, ddp_find_unused_parameters=False, **extra,
    )
    logger.info("training %s (%s) on %d rows, %d validation rows", params.model.name, kind, len(train), len(valid))
    info: dict[str, Any] = {"name": name, "kind": kind, "base": params.model.name}
    resolved = params_to_dict(params)
    del resolved["chat_template"]  # the mode is replaced by what it resolved to, recorded only when used:
    if chat:  # plain-layout model dirs stay byte for byte as before the option existed
        info["chat_template"] = resolved["chat_template"] = True

    def finalize(trainer: Trainer, result: TrainOutput, resumed_from: str | None) -> dict[str, Any]:
        info.update(train_loss=float(result.training_loss), global_step=int(result.global_step))
        evals = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
        if evals:
            info["eval_loss"] = float(evals[-1])
        return {"ensemble_model.json": info}

    run = TrainingRun(model=model, args=args, train_dataset=train, eval_dataset=valid or None, data_collator=collator,
                      tokenizer=tokenizer, trainer_class=trainer_cls, callbacks=callbacks, finalize=finalize)
    outcome = run_training(run, resolved_params=resolved, inputs=inputs, checkpoint_dir=checkpoint_dir,
                           live_dir=live_dir, out_dir=out_dir)
    return {**info, "resumed_from": Path(outcome.resumed_from).name if outcome.resumed_from else None}
