"""Accept/Reject decision datasets: read and validate conversation JSONL, format prompts, subsample.

Input rows are ShareGPT-like: ``{"conversations": [{"from": ..., "value": ...}, ...]}`` with
roles ``system``, ``user`` (alias ``human``) and ``assistant`` (alias ``gpt``). The last turn
must be the assistant's and hold a decision ``\\boxed{Accept}`` or ``\\boxed{Reject}``; a row
without a parseable decision is an :class:`InputError` naming file and line, raised before
any training starts.

Proportion datasets are named by their **accept:reject odds**, as the lab's write-up reads its
sets ("1:2 -> 33%, 1:3 -> 25%, 1:4 -> 20%, 1:8 -> 11%" accepted): ``odds_1_2`` is one Accept
for every two Rejects (33.3 % Accept), ``odds_1_1`` the balanced set. (The upstream script read
"1:N" as one in N accepted, 50/33/25/12.5 %: the odds 1:1, 1:2, 1:3, 1:7, still expressible in
``weighted.sets.odds``.) Every set has exactly ``round(fraction * size)`` Accept rows and the
same total ``size``.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmlab.artifacts import atomic_dir, atomic_write_json
from lmlab.errors import InputError
from lmlab.inputs import read_jsonl
from lmlab.weighted.params import SetsParams

logger = logging.getLogger(__name__)

__all__ = [
    "ACCEPT", "REJECT", "DecisionExample", "read_decisions", "parse_decision", "parse_boxed",
    "swap_decision", "format_prompt", "sample_proportion", "examples_to_rows", "write_sets",
]

ACCEPT = "Accept"
REJECT = "Reject"
_ROLE_ALIASES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant"}
_ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}
_BOXED = re.compile(r"\\boxed\{\s*(Accept|Reject)\s*\}", re.IGNORECASE)
_BARE = re.compile(r"\b(Accept|Reject)\b", re.IGNORECASE)


@dataclass(frozen=True)
class DecisionExample:
    """One conversation: the prompt turns, the assistant response and its gold decision."""

    id: str
    turns: tuple[tuple[str, str], ...]
    response: str
    accept: bool
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def prompt(self) -> str:
        return format_prompt(self.turns)


def parse_boxed(text: str) -> str | None:
    """The decision inside the last ``\\boxed{...}`` (strict: training and test data)."""
    found = _BOXED.findall(text)
    return found[-1].capitalize() if found else None


def parse_decision(text: str) -> str | None:
    """Decision of generated text: ``\\boxed{}`` first, else a lone Accept/Reject word, else None.

    Mirrors the upstream evaluation (boxed regex, then substring fallback); text naming both
    words without a box is ambiguous and counts as unknown.
    """
    boxed = parse_boxed(text)
    if boxed:
        return boxed
    words = {w.capitalize() for w in _BARE.findall(text)}
    return words.pop() if len(words) == 1 else None


def swap_decision(response: str) -> str:
    """The counterfactual response: the last boxed decision replaced by the other class."""
    matches = list(_BOXED.finditer(response))
    if not matches:
        raise ValueError(f"no \\boxed decision in {response!r}")
    m = matches[-1]
    other = REJECT if m.group(1).capitalize() == ACCEPT else ACCEPT
    return response[: m.start(1)] + other + response[m.end(1):]


def format_prompt(turns: Sequence[tuple[str, str]]) -> str:
    """Plain-text chat layout shared by training, scoring and generation.

    ``System: ...\\nUser: ...\\nAssistant:\\n``; the response follows directly. Used unless
    the base tokenizer's chat template formats the turns (``weighted.prompt.chat_template``,
    :mod:`lmlab.chat`); the tiny tokenizers have none, so they always use this layout.
    """
    return "".join(f"{_ROLE_LABELS[role]}: {value}\n" for role, value in turns) + "Assistant:\n"


def _example(row: dict[str, Any], path: Path, line: int) -> DecisionExample:
    conv = row.get("conversations")
    if not isinstance(conv, list) or len(conv) < 2:
        raise InputError("'conversations' must be a list of at least two turns.", path=path, line=line, column=1)
    turns: list[tuple[str, str]] = []
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str) or turn.get("from") not in _ROLE_ALIASES:
            raise InputError(
                f"turn {i} must be {{\"from\": one of {sorted(_ROLE_ALIASES)}, \"value\": text}}, got {turn!r:.80}.",
                path=path, line=line, column=1,
            )
        turns.append((_ROLE_ALIASES[turn["from"]], turn["value"]))
    role, response = turns[-1]
    if role != "assistant":
        raise InputError(f"the last turn must be the assistant's decision, got role '{role}'.", path=path, line=line,
                         column=1)
    decision = parse_boxed(response)
    if decision is None:
        raise InputError(
            f"the assistant turn has no parseable decision: {response!r:.80}.", path=path, line=line, column=1,
            hint="the last assistant turn must contain \\boxed{Accept} or \\boxed{Reject}.",
        )
    row_id = str(row.get("id", f"{path.name}:{line}"))
    return DecisionExample(row_id, tuple(turns[:-1]), response, decision == ACCEPT, row)


def read_decisions(path: str | Path) -> list[DecisionExample]:
    """Read and validate a decision JSONL file (every row must carry a gold decision)."""
    path = Path(path)
    rows = read_jsonl(path, required={"conversations": list})
    text_lines = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if line.strip()]
    examples = [_example(row, path, line) for row, line in zip(rows, text_lines)]
    n_acc = sum(e.accept for e in examples)
    logger.info("%s: %d rows, %d Accept (%.1f%%)", path, len(examples), n_acc, 100.0 * n_acc / len(examples))
    return examples


def sample_proportion(
    examples: Sequence[DecisionExample], fraction: float, size: int, seed: int, name: str = ""
) -> list[DecisionExample]:
    """Exactly ``round(fraction * size)`` Accept and the rest Reject rows, drawn without replacement.

    The draw and the final order come from ``random.Random(f"{name}:{seed}")``, so each named
    set is reproducible on its own and independent of the others.
    """
    if not 0.0 < fraction < 1.0:
        raise InputError(f"accept fraction must be in (0, 1), got {fraction}.", key=name or None)
    n_acc = round(fraction * size)
    n_rej = size - n_acc
    accepts = [e for e in examples if e.accept]
    rejects = [e for e in examples if not e.accept]
    if n_acc > len(accepts) or n_rej > len(rejects):
        raise InputError(
            f"set '{name}' needs {n_acc} Accept and {n_rej} Reject rows but the pool has {len(accepts)} and "
            f"{len(rejects)}.", hint="lower weighted.sets.n_rows or use a larger training pool.",
        )
    rng = random.Random(f"{name}:{seed}")
    chosen = rng.sample(accepts, n_acc) + rng.sample(rejects, n_rej)
    rng.shuffle(chosen)
    return chosen


def examples_to_rows(examples: Sequence[DecisionExample]) -> list[dict[str, Any]]:
    """The original JSON rows (the sets stay in the input's conversation format)."""
    return [e.raw for e in examples]


def write_sets(pool: Sequence[DecisionExample], params: SetsParams, out: str | Path) -> dict[str, dict[str, Any]]:
    """Write ``<out>/<name>.jsonl`` per set of ``params`` plus ``<out>/summary.json``, atomically.

    Each set is :func:`sample_proportion` of ``pool`` (rows in the input's format, one sorted-key JSON
    object per line); the directory is swapped into place only once complete. Returns the summary
    (``{name: {"odds", "fraction", "n", "n_accept"}}``; the set's measured share is ``n_accept / n``).
    """
    summary: dict[str, dict[str, Any]] = {}
    with atomic_dir(out) as tmp:
        for name, frac in params.fractions.items():
            rows = sample_proportion(pool, frac, params.n_rows, params.seed, name)
            text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in examples_to_rows(rows))
            (tmp / f"{name}.jsonl").write_text(text, encoding="utf-8")
            summary[name] = {"odds": list((params.odds or {})[name]), "fraction": frac, "n": len(rows),
                             "n_accept": sum(r.accept for r in rows)}
        atomic_write_json(tmp / "summary.json", summary)
    return summary
