"""Instruction JSONL for the Ensemble family: validation, leak stripping, stratified split, prompts.

Rows have ``instruction``, ``input`` and ``output`` (extra fields are kept). The upstream
split took the first 90 rows of a class-sorted file, so validation held one class; here the
split is shuffled with a seed and stratified by the gold gadget class. The upstream
instructions name the class ("Identify ... CONTROL-FLOW gadgets"); with
``strip_class_from_instruction`` the class name is removed from the prompt and the original
text is kept in ``instruction_original`` for the copy-from-instruction baseline.

The write-up's own protocol (002) stays runnable: ``subsample_n`` keeps N rows (its
``TOTAL_EXAMPLES_TO_USE = 100``: the first N, or a seeded sample), and ``split: writeup`` cuts
them into 90 % train / 10 % validation and compares on the validation rows (``test.jsonl``
then holds the validation rows: the write-up has no separate test split).
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lmlab.chat import chat_prompt_ids, fit_chat_prompt
from lmlab.ensemble.labels import extract_gadget_type, normalize_gadget_type, strip_class_mentions
from lmlab.errors import InputError
from lmlab.inputs import read_jsonl

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

__all__ = [
    "PROMPT_TEMPLATE",
    "REQUIRED_FIELDS",
    "DataParams",
    "format_prompt",
    "encode_prompt",
    "read_instruction_rows",
    "gold_class",
    "prepare_rows",
    "stratified_split",
    "subsample_rows",
    "writeup_split",
    "split_rows",
]

PROMPT_TEMPLATE = "Task: {instruction}\n\nExcerpt:\n{input}\n\nAnswer:"
REQUIRED_FIELDS: dict[str, type] = {"instruction": str, "input": str, "output": str}
OTHER_CLASS = "OTHER"


@dataclass(frozen=True)
class DataParams:
    """``ensemble.data``: the input JSONL and how it is split."""

    jsonl: str = "data/ensemble/sample/gadgets.jsonl"
    strip_class_from_instruction: bool = True
    valid_fraction: float = 0.1
    test_fraction: float = 0.2
    subsample_n: int = 0
    subsample_order: Literal["first", "random"] = "first"
    split: Literal["stratified", "writeup"] = "stratified"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.subsample_n < 0:
            raise ValueError(f"subsample_n: must be >= 0 (0 = every row), got {self.subsample_n}")
        for name in ("valid_fraction", "test_fraction"):
            if not 0.0 < getattr(self, name) < 0.5:
                raise ValueError(f"{name}: must be in (0, 0.5), got {getattr(self, name)}")


def format_prompt(instruction: str, excerpt: str) -> str:
    """The prompt both model kinds see (the seq2seq source, the causal prefix)."""
    return PROMPT_TEMPLATE.format(instruction=instruction.strip(), input=excerpt.strip())


def read_instruction_rows(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate the JSONL (errors name file:line); outputs must carry a gadget_type."""
    rows = read_jsonl(path, required=REQUIRED_FIELDS)
    for lineno, row in enumerate(rows, start=1):
        if not row["output"].strip():
            raise InputError("field 'output' is empty.", path=path, hint=f"row {lineno} needs a target output.")
    return rows


def gold_class(output: str) -> str:
    """The canonical class of a gold output (``OTHER`` when it has none: kept, stratified apart)."""
    return normalize_gadget_type(extract_gadget_type(output)) or OTHER_CLASS


def prepare_rows(rows: Sequence[dict[str, Any]], strip_class: bool) -> list[dict[str, Any]]:
    """Add ``gold_class``, ``instruction_original`` and ``row_id``; strip class names if asked."""
    out = []
    for i, row in enumerate(rows):
        new = dict(row)
        new["row_id"] = i
        new["instruction_original"] = row["instruction"]
        if strip_class:
            new["instruction"] = strip_class_mentions(row["instruction"])
        new["gold_class"] = gold_class(row["output"])
        out.append(new)
    return out


def stratified_split(
    rows: Sequence[dict[str, Any]],
    valid_fraction: float,
    test_fraction: float,
    seed: int,
    key: str = "gold_class",
) -> dict[str, list[dict[str, Any]]]:
    """Shuffle each class with ``seed`` and cut it into train/valid/test by the fractions.

    Every class with at least 3 rows gets at least one valid and one test row, so a small
    class is never absent from evaluation. Output order within each split is shuffled too.
    """
    rng = random.Random(f"split:{seed}")
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_class[row[key]].append(row)
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "valid": [], "test": []}
    for label in sorted(by_class):
        group = list(by_class[label])
        rng.shuffle(group)
        n = len(group)
        n_test = round(n * test_fraction)
        n_valid = round(n * valid_fraction)
        if n >= 3:
            n_test, n_valid = max(1, n_test), max(1, n_valid)
        splits["test"].extend(group[:n_test])
        splits["valid"].extend(group[n_test:n_test + n_valid])
        splits["train"].extend(group[n_test + n_valid:])
    for name in splits:
        rng.shuffle(splits[name])
    if not splits["train"] or not splits["test"]:
        raise InputError(f"too few rows to split ({len(rows)}): train or test would be empty.",
                         key="ensemble.data", hint="provide more rows or change the split fractions.")
    logger.info("split %d rows: %s", len(rows), {k: len(v) for k, v in splits.items()})
    return splits


def subsample_rows(rows: Sequence[dict[str, Any]], n: int, order: str, seed: int) -> list[dict[str, Any]]:
    """``n`` rows (``0`` or ``n >= len(rows)``: every row).

    ``first`` keeps the file's first ``n`` rows, as the write-up's script does with
    ``TOTAL_EXAMPLES_TO_USE`` (on a class-sorted file that keeps few classes); ``random`` draws a
    seeded sample and keeps it in file order.
    """
    if n <= 0 or n >= len(rows):
        return list(rows)
    if order == "first":
        return list(rows[:n])
    keep = sorted(random.Random(f"subsample:{seed}").sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def writeup_split(rows: Sequence[dict[str, Any]], valid_fraction: float, seed: int) -> dict[str, list[dict[str, Any]]]:
    """The write-up's split: shuffled with ``seed``, ``valid_fraction`` (its 10 %) held out, no test split.

    The write-up compares the models on its validation rows, so ``test`` is the validation rows
    (the same rows, not a copy of other data); nothing is stratified, so a small run may leave a
    class out of validation, as the write-up's 10-row validation did.
    """
    order = list(rows)
    random.Random(f"writeup-split:{seed}").shuffle(order)
    n_valid = max(1, round(len(order) * valid_fraction))
    if len(order) - n_valid < 1:
        raise InputError(f"too few rows to split ({len(rows)}): train would be empty.",
                         key="ensemble.data.subsample_n", hint="keep at least 2 rows.")
    valid, train = order[:n_valid], order[n_valid:]
    logger.info("write-up split of %d rows: %d train, %d validation (compared on validation)",
                len(rows), len(train), len(valid))
    return {"train": train, "valid": valid, "test": list(valid)}


def split_rows(rows: Sequence[dict[str, Any]], params: DataParams) -> dict[str, list[dict[str, Any]]]:
    """Subsample, then split by ``params.split`` (``stratified``: the default; ``writeup``: 90/10)."""
    kept = subsample_rows(rows, params.subsample_n, params.subsample_order, params.seed)
    if len(kept) < len(rows):
        logger.info("subsampled %d of %d rows (%s)", len(kept), len(rows), params.subsample_order)
    if params.split == "writeup":
        return writeup_split(kept, params.valid_fraction, params.seed)
    return stratified_split(kept, params.valid_fraction, params.test_fraction, params.seed)


def encode_prompt(tokenizer: PreTrainedTokenizerBase, instruction: str, excerpt: str, max_length: int) -> list[int]:
    """Token ids of the prompt, truncated to ``max_length`` (head kept) without special tokens."""
    ids = tokenizer(format_prompt(instruction, excerpt), add_special_tokens=False)["input_ids"]
    return list(ids[:max_length])


def chat_user_turn(tokenizer: PreTrainedTokenizerBase, instruction: str, excerpt: str, max_length: int
                   ) -> list[dict[str, str]]:
    """The prompt as the user turn of a chat, its text cut so the templated prompt fits ``max_length``."""
    return fit_chat_prompt(tokenizer, [{"role": "user", "content": format_prompt(instruction, excerpt)}], max_length)


def encode_chat_prompt(tokenizer: PreTrainedTokenizerBase, instruction: str, excerpt: str, max_length: int
                       ) -> list[int]:
    """Templated prompt ids (user turn + assistant header), the user text cut to fit ``max_length``."""
    return chat_prompt_ids(tokenizer, chat_user_turn(tokenizer, instruction, excerpt, max_length))
