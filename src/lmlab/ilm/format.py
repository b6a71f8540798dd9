"""The ILM text format (Donahue et al. 2020): mask types, special tokens, context/answers.

An *example* is a list of spans ``(mask_type, char_offset, char_len)`` over a document,
left to right and non-overlapping (adjacent spans are allowed). ``mask_type`` is a plain
int with the reference's numbering so pickles hold builtin types only.

The ILM training sequence is::

    context (each span replaced by its <|infill_TYPE|> token)
    <|startofinfill|> answer_1 <|endofinfill|> answer_2 <|endofinfill|> ...

As with GPT-2's byte-level BPE in the reference, the single space before a masked span
belongs to the answer (``She ate<|infill_word|> for`` / answer ``" cereal"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

__all__ = [
    "MaskType",
    "Span",
    "START_INFILL",
    "END_INFILL",
    "MASK_TOKENS",
    "ILM_SPECIAL_TOKENS",
    "validate_spans",
    "mask_document",
    "fill_context",
]


class MaskType(IntEnum):
    """Span types, numbered as ``ilm.mask.hierarchical.MaskHierarchicalType``."""

    DOCUMENT = 0
    PARAGRAPH = 1
    SENTENCE = 2
    NGRAM = 3
    WORD = 4


Span = tuple[int, int, int]

START_INFILL = "<|startofinfill|>"
END_INFILL = "<|endofinfill|>"
MASK_TOKENS: dict[MaskType, str] = {t: f"<|infill_{t.name.lower()}|>" for t in MaskType}
ILM_SPECIAL_TOKENS: tuple[str, ...] = (START_INFILL, END_INFILL, *MASK_TOKENS.values())


def validate_spans(doc: str, spans: Sequence[Span]) -> None:
    """Raise ``ValueError`` unless spans are typed, in range, left to right and non-overlapping."""
    previous_end = 0
    for mask_type, offset, length in spans:
        if mask_type not in MaskType._value2member_map_:
            raise ValueError(f"unknown mask type {mask_type!r}")
        if offset < 0 or length <= 0 or offset + length > len(doc):
            raise ValueError(f"span ({mask_type}, {offset}, {length}) out of range for a document of {len(doc)} chars")
        if offset < previous_end:
            raise ValueError(f"span ({mask_type}, {offset}, {length}) overlaps or is out of order")
        previous_end = offset + length


def mask_document(doc: str, spans: Sequence[Span], absorb_leading_space: bool = True) -> tuple[str, list[str]]:
    """Return the context (spans replaced by mask tokens) and the answers, left to right."""
    validate_spans(doc, spans)
    pieces: list[str] = []
    answers: list[str] = []
    cursor = 0
    for mask_type, offset, length in spans:
        start = offset
        if absorb_leading_space and start > cursor and doc[start - 1] == " ":
            start -= 1
        pieces.append(doc[cursor:start])
        pieces.append(MASK_TOKENS[MaskType(mask_type)])
        answers.append(doc[start : offset + length])
        cursor = offset + length
    pieces.append(doc[cursor:])
    return "".join(pieces), answers


def fill_context(context: str, answers: Sequence[str]) -> str:
    """Put ``answers`` back into the mask tokens of ``context``, left to right.

    Missing answers leave the remaining mask tokens in place; extra answers are ignored.
    """
    out: list[str] = []
    i = 0
    answer_iter = iter(answers)
    while i < len(context):
        for token in MASK_TOKENS.values():
            if context.startswith(token, i):
                answer = next(answer_iter, None)
                out.append(token if answer is None else answer)
                i += len(token)
                break
        else:
            out.append(context[i])
            i += 1
    return "".join(out)
