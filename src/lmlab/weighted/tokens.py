"""Tokenizer-agnostic decision-token detection and the causal-LM encoding of decision rows.

The decision token is found without knowing the tokenizer: tokenize the response with both
answers (``\\boxed{Accept}`` and ``\\boxed{Reject}``) and take the first index where the two
id sequences differ. That offset, placed after the prompt, is the decision position ``d``; the
ids there are the row's accept and reject ids. A byte-level BPE, a WordPiece or a character
tokenizer all work the same way.

Training rows are ``prompt ids + response ids + eos`` with the prompt masked (-100) in the
labels. The loss finds ``d`` again from the labels alone (first supervised label that is an
accept or reject id), so :func:`encode_decisions` checks that this rule recovers ``d`` on
every row and raises :class:`InputError` otherwise, before any training starts.

With ``chat=True`` (an instruction-tuned base whose tokenizer has a chat template, see
:mod:`lmlab.chat`) the prompt is the template's rendering of the turns plus the assistant header
and the response ids are the template's assistant turn through its end-of-turn token (EOS
appended when that token is not EOS). Both answers are encoded the same way, so ``d`` is still
the first index where they differ, now counted after the assistant header.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from lmlab.chat import chat_messages, encode_chat
from lmlab.errors import InputError
from lmlab.weighted.data import DecisionExample, swap_decision

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100

__all__ = ["IGNORE_INDEX", "EncodedDecision", "DecisionVocab", "decision_offset", "encode_decision",
           "encode_decisions"]


@dataclass(frozen=True)
class EncodedDecision:
    """One row as token ids: the full sequence, its labels and where the decision sits."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    prompt_len: int
    decision_pos: int
    accept_id: int
    reject_id: int
    accept: bool
    truncated: bool = False

    @property
    def prefix_ids(self) -> tuple[int, ...]:
        """Prompt plus the response up to (not including) the decision token: the scoring input."""
        return self.input_ids[: self.decision_pos]

    @property
    def prompt_ids(self) -> tuple[int, ...]:
        return self.input_ids[: self.prompt_len]


@dataclass(frozen=True)
class DecisionVocab:
    """Every token id that starts an Accept / a Reject answer in a dataset (disjoint sets)."""

    accept_ids: tuple[int, ...]
    reject_ids: tuple[int, ...]


def decision_offset(a_ids: Sequence[int], r_ids: Sequence[int]) -> int:
    """First index where two token sequences differ (ValueError if one is a prefix of the other)."""
    for i, (a, r) in enumerate(zip(a_ids, r_ids)):
        if a != r:
            return i
    raise ValueError("the Accept and Reject responses tokenize to sequences where one is a prefix of the other")


def _chat_ids(tokenizer: PreTrainedTokenizerBase, example: DecisionExample) -> tuple[list[int], list[int], list[int]]:
    """Prompt, response and counterfactual-response ids in the tokenizer's chat template (EOS included)."""
    messages = chat_messages(example.turns)
    real = encode_chat(tokenizer, messages, example.response)
    counter = encode_chat(tokenizer, messages, swap_decision(example.response))
    return list(real.prompt_ids), list(real.answer_ids), list(counter.answer_ids)


def encode_decision(tokenizer: PreTrainedTokenizerBase, example: DecisionExample, max_length: int,
                    chat: bool = False) -> EncodedDecision:
    """Encode one row; the prompt is cut from the left if the row is longer than ``max_length``.

    ``chat``: format with the tokenizer's chat template (the cut keeps the assistant header).
    """
    if chat:
        prompt, response, counter = _chat_ids(tokenizer, example)
    else:
        prompt = tokenizer(example.prompt, add_special_tokens=True)["input_ids"]
        response = tokenizer(example.response, add_special_tokens=False)["input_ids"]
        counter = tokenizer(swap_decision(example.response), add_special_tokens=False)["input_ids"]
    try:
        offset = decision_offset(response, counter)
    except ValueError as exc:
        raise InputError(f"row '{example.id}': {exc}.", hint="use a response whose decision is its own token(s).") from exc
    a_ids, r_ids = (response, counter) if example.accept else (counter, response)
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None and not chat else []
    response = list(response) + eos
    room = max_length - len(response)
    if room < 1:
        raise InputError(f"row '{example.id}': the response alone has {len(response)} tokens (max_length {max_length}).",
                         hint="raise the model's max_positions.")
    truncated = len(prompt) > room
    if truncated:
        prompt = prompt[len(prompt) - room:]
    ids = tuple(prompt + response)
    labels = tuple([IGNORE_INDEX] * len(prompt) + response)
    return EncodedDecision(ids, labels, len(prompt), len(prompt) + offset, a_ids[offset], r_ids[offset],
                           example.accept, truncated)


def encode_decisions(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[DecisionExample],
    max_length: int,
    path: str | Path | None = None,
    chat: bool = False,
) -> tuple[list[EncodedDecision], DecisionVocab]:
    """Encode all rows, collect the decision vocabulary and check every row has one decision token.

    ``chat``: format the rows with the tokenizer's chat template (:func:`encode_decision`).
    """
    encoded = [encode_decision(tokenizer, ex, max_length, chat) for ex in examples]
    accept_ids = sorted({e.accept_id for e in encoded})
    reject_ids = sorted({e.reject_id for e in encoded})
    both = set(accept_ids) & set(reject_ids)
    if both:
        raise InputError(f"token ids {sorted(both)} start both an Accept and a Reject answer.", path=path,
                         hint="use a response template where the decision word is its own token(s).")
    decision = set(accept_ids) | set(reject_ids)
    for ex, enc in zip(examples, encoded):
        first = next(i for i in range(enc.prompt_len, len(enc.labels)) if enc.labels[i] in decision)
        if first != enc.decision_pos:
            raise InputError(
                f"row '{ex.id}': a decision token appears in the response before the decision itself "
                f"(position {first - enc.prompt_len} instead of {enc.decision_pos - enc.prompt_len}).",
                path=path, hint="the assistant turn must contain exactly one decision, e.g. \\boxed{Accept}.",
            )
    truncated = sum(enc.truncated for enc in encoded)
    if truncated:
        logger.warning("%d of %d prompts were cut from the left to fit %d tokens", truncated, len(encoded), max_length)
    vocab = DecisionVocab(tuple(accept_ids), tuple(reject_ids))
    logger.info("encoded %d rows; accept ids %s, reject ids %s", len(encoded), vocab.accept_ids, vocab.reject_ids)
    return encoded, vocab
