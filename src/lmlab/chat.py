"""Chat templates: format a prompt/answer pair with the tokenizer's own template, boundary exact.

Instruction-tuned bases (SmolLM2-Instruct, Qwen2.5-Instruct, ...) were tuned on conversations
rendered by their tokenizer's chat template; fine-tuning or prompting them in a plain layout
wastes that. A family that formats (prompt, answer) pairs asks :func:`use_chat_template`
whether to use the template (``chat_template: auto | never | always``; ``auto`` = when the
tokenizer has one, so the tiny embedded tokenizers, which have none, keep the plain layout) and
encodes with :func:`encode_chat`:

* the **prompt** is ``apply_chat_template(turns, add_generation_prompt=True)``: every turn plus
  the assistant header (``<|im_start|>assistant\\n`` in ChatML). Evaluation and generation feed
  exactly these ids.
* the **answer** is what the template renders after that prompt when the assistant turn is
  added, **up to and including the end-of-turn token** (the first special token after the
  assistant content, ``<|im_end|>`` in ChatML). It is supervised: the model must learn to end
  its turn, and that token is what stops generation. Whatever the template writes after it
  (ChatML's ``\\n`` before a next turn that never comes) is not part of the answer. If the
  end-of-turn token is not the tokenizer's EOS (or the template writes none), EOS is appended,
  as the plain layout does, so generation (which stops at EOS) stops there.

Templated text is tokenized with ``add_special_tokens=False``: the template writes BOS itself
when the model wants one (``apply_chat_template(tokenize=True)`` does the same). The whole
conversation is tokenized once and split after the prompt's ids, so the ids are the template's
own; when a tokenizer merges across the boundary (a SentencePiece/Metaspace BPE can merge
ChatML's ``\\n`` with the answer's first characters) the answer is tokenized on its own instead
(``ChatEncoding.joint`` is then False): the boundary stays exact, the answer ids are simply not
the joint tokenization's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # annotations only: the ensemble data module imports this without torch (issue 18)
    from transformers import PreTrainedTokenizerBase

from lmlab.errors import InputError

logger = logging.getLogger(__name__)

ChatMode = Literal["auto", "never", "always"]
CHAT_MODES: tuple[str, ...] = ("auto", "never", "always")

__all__ = ["ChatMode", "CHAT_MODES", "ChatEncoding", "has_chat_template", "use_chat_template", "chat_messages",
           "chat_prompt_ids", "encode_chat", "fit_chat_prompt"]


@dataclass(frozen=True)
class ChatEncoding:
    """A templated (prompt, answer) pair: ``prompt_ids + answer_ids`` is the training row."""

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]
    joint: bool = True


def has_chat_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def use_chat_template(tokenizer: PreTrainedTokenizerBase, mode: str, key: str | None = None) -> bool:
    """Resolve ``chat_template: auto | never | always`` for ``tokenizer`` (``always`` without one is an error)."""
    if mode not in CHAT_MODES:
        raise InputError(f"chat_template must be one of {list(CHAT_MODES)}, got {mode!r}.", key=key)
    if mode == "never":
        return False
    if has_chat_template(tokenizer):
        return True
    if mode == "always":
        raise InputError("chat_template is 'always' but the tokenizer has no chat template.", key=key,
                         hint="use an instruction-tuned base (e.g. SmolLM2-135M-Instruct) or chat_template: auto.")
    return False


def chat_messages(turns: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """``[(role, text), ...]`` as the ``[{"role", "content"}]`` list ``apply_chat_template`` takes."""
    return [{"role": role, "content": text} for role, text in turns]


def _render(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Mapping[str, str]], generation: bool) -> str:
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation)
    if not isinstance(text, str):  # a batch or a dict would mean the template API changed under us
        raise TypeError(f"apply_chat_template returned {type(text).__name__}, expected str")
    return text


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def chat_prompt_ids(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Mapping[str, str]]) -> list[int]:
    """Ids of ``messages`` plus the assistant header: what the model continues from."""
    return _ids(tokenizer, _render(tokenizer, messages, generation=True))


def _end_answer(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> tuple[int, ...]:
    """Cut after the end-of-turn token (the first special token); append EOS unless that token is EOS."""
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}  # an unknown character ends no turn
    eos = tokenizer.eos_token_id
    end = next((i for i, t in enumerate(ids) if t in special), None)
    answer = list(ids) if end is None else list(ids[: end + 1])
    if eos is not None and (not answer or answer[-1] != eos):
        answer.append(eos)
    return tuple(answer)


def encode_chat(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Mapping[str, str]], answer: str
                ) -> ChatEncoding:
    """Template ids of ``messages`` (prompt) and of the assistant turn ``answer`` (see the module doc)."""
    prompt_text = _render(tokenizer, messages, generation=True)
    full_text = _render(tokenizer, [*messages, {"role": "assistant", "content": answer}], generation=False)
    if not full_text.startswith(prompt_text):
        raise InputError("the chat template renders the conversation with its answer differently from the prompt "
                         "it renders for generation, so the prompt/answer boundary is undefined.",
                         hint="use chat_template: never for this tokenizer.")
    prompt_ids = _ids(tokenizer, prompt_text)
    full_ids = _ids(tokenizer, full_text)
    joint = full_ids[: len(prompt_ids)] == prompt_ids
    if not joint:
        logger.debug("the tokenizer merges across the prompt/answer boundary: answer tokenized on its own")
    rest = full_ids[len(prompt_ids):] if joint else _ids(tokenizer, full_text[len(prompt_text):])
    return ChatEncoding(tuple(prompt_ids), _end_answer(tokenizer, rest), joint)


def fit_chat_prompt(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Mapping[str, str]], max_length: int
                    ) -> list[dict[str, str]]:
    """``messages`` with the last turn's text cut (head kept) so the templated prompt fits ``max_length`` ids.

    Cutting the rendered ids instead would cut the assistant header off; here the template
    still frames the shortened text. The cut text is decoded from a prefix of its own ids, then
    re-rendered; if re-tokenizing adds a token, the cut shrinks by the excess (a few rounds).
    """
    out = [dict(m) for m in messages]
    content_ids = _ids(tokenizer, out[-1]["content"])
    keep = len(content_ids)
    for _ in range(8):
        excess = len(chat_prompt_ids(tokenizer, out)) - max_length
        if excess <= 0:
            return out
        keep -= excess
        if keep <= 0:
            raise InputError(f"the chat template alone needs more than {max_length} tokens.",
                             hint="raise the maximum prompt length.")
        out[-1]["content"] = tokenizer.decode(content_ids[:keep])
    raise InputError(f"cannot fit the templated prompt into {max_length} tokens.", hint="raise the maximum prompt length.")
