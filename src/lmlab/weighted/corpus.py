"""Embedded sample data for the weighted-loss family: synthetic peer reviews with Accept/Reject.

Each row is a ShareGPT-style conversation (``conversations`` = list of ``{"from", "value"}``
turns: ``system``, ``user``, ``assistant``) whose user turn holds a paper summary and a few
reviewer remarks, and whose assistant turn is ``\\boxed{Accept}`` or ``\\boxed{Reject}``.
Real review data in the same format drops in through the ``weighted.data.*`` paths.

How the evidence works (so that it is learnable but noisy): every paper has a latent quality
``q ~ N(0, 1)``; the gold decision is Accept iff ``q + noise > 0``; each reviewer remark is a
strength with probability ``sigmoid(evidence * q)`` and a weakness otherwise, so the share of
strengths is informative but not decisive; a fraction ``label_noise`` of decisions is flipped.
Summaries and neutral remarks carry no signal. Everything is drawn from one
``random.Random(seed)`` stream per split, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["DecisionSampleParams", "SYSTEM_PROMPT", "make_review", "make_split", "conversation_row"]

SYSTEM_PROMPT = "Decide: Accept or Reject."

# Short phrases keep the rows short (training cost is linear in the length): a paper summary
# (no signal) plus 3-6 remarks, each a two-word cue after "Strength:", "Weakness:" or "Note:".
_METHODS = (
    "attention", "contrastive pretraining", "mixture of experts", "curriculum learning",
    "a Bayesian prior", "graph rewiring", "distillation", "retrieval", "adapters", "diffusion",
)
_TOPICS = (
    "language models", "graphs", "control", "segmentation", "speech", "causal inference",
    "federated learning", "proteins", "forecasting", "translation",
)
_STRENGTHS = (
    "novel idea", "thorough experiments", "clear writing", "large gains", "convincing ablations",
    "sound theory", "significant results", "elegant method",
)
_WEAKNESSES = (
    "limited novelty", "weak baselines", "unclear writing", "small gains", "missing ablations",
    "flawed proofs", "narrow evaluation", "incremental idea",
)
_NEUTRAL = (
    "cite more work", "minor typos", "small figures", "long appendix",
)


@dataclass(frozen=True)
class DecisionSampleParams:
    """Size and difficulty of the embedded decision sample (``weighted.sample``)."""

    seed: int = 0
    n_pool: int = 1200
    n_test: int = 240
    min_remarks: int = 3
    max_remarks: int = 6
    evidence: float = 2.5
    decision_noise: float = 0.2
    label_noise: float = 0.03
    neutral_rate: float = 0.15

    def __post_init__(self) -> None:
        if self.n_pool <= 0:
            raise ValueError(f"n_pool: must be a positive integer, got {self.n_pool}")
        if self.n_test <= 0 or self.n_test % 2:
            raise ValueError(f"n_test: must be a positive even integer (balanced test set), got {self.n_test}")
        if not 1 <= self.min_remarks <= self.max_remarks:
            raise ValueError(f"min_remarks: must be in [1, max_remarks={self.max_remarks}], got {self.min_remarks}")
        if self.evidence <= 0:
            raise ValueError(f"evidence: must be > 0, got {self.evidence}")
        if self.decision_noise < 0:
            raise ValueError(f"decision_noise: must be >= 0, got {self.decision_noise}")
        if not 0 <= self.label_noise < 0.5:
            raise ValueError(f"label_noise: must be in [0, 0.5), got {self.label_noise}")
        if not 0 <= self.neutral_rate < 1:
            raise ValueError(f"neutral_rate: must be in [0, 1), got {self.neutral_rate}")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def make_review(rng: random.Random, params: DecisionSampleParams) -> tuple[str, bool]:
    """One review text and its gold decision (True = Accept)."""
    quality = rng.gauss(0.0, 1.0)
    accept = quality + rng.gauss(0.0, params.decision_noise) > 0
    if rng.random() < params.label_noise:
        accept = not accept
    p_strength = _sigmoid(params.evidence * quality)
    remarks = []
    for _ in range(rng.randint(params.min_remarks, params.max_remarks)):
        if rng.random() < params.neutral_rate:
            remarks.append(f"Note: {rng.choice(_NEUTRAL)}.")
        elif rng.random() < p_strength:
            remarks.append(f"Strength: {rng.choice(_STRENGTHS)}.")
        else:
            remarks.append(f"Weakness: {rng.choice(_WEAKNESSES)}.")
    summary = f"Paper: {rng.choice(_METHODS)} for {rng.choice(_TOPICS)}."
    return f"{summary} {' '.join(remarks)}", accept


def conversation_row(row_id: str, review: str, accept: bool) -> dict[str, Any]:
    """A ShareGPT-like row: system / user / assistant turns, the assistant answers ``\\boxed{...}``."""
    return {
        "id": row_id,
        "conversations": [
            {"from": "system", "value": SYSTEM_PROMPT},
            {"from": "user", "value": review},
            {"from": "assistant", "value": "\\boxed{Accept}" if accept else "\\boxed{Reject}"},
        ],
    }


def make_split(name: str, n: int, seed: int, params: DecisionSampleParams, balanced: bool = False) -> list[dict]:
    """``n`` rows drawn from ``seed``; ``balanced`` keeps drawing until exactly n/2 of each class.

    The pool (``balanced=False``) keeps its natural, roughly 50:50 class ratio; the
    proportion datasets are subsampled from it by :mod:`lmlab.weighted.data`.
    """
    rng = random.Random(f"{name}:{seed}")
    rows: list[dict] = []
    wanted = {True: n // 2, False: n - n // 2} if balanced else None
    while len(rows) < n:
        review, accept = make_review(rng, params)
        if wanted is not None:
            if wanted[accept] == 0:
                continue
            wanted[accept] -= 1
        rows.append(conversation_row(f"{name}-{len(rows):05d}", review, accept))
    n_acc = sum(r["conversations"][-1]["value"].endswith("{Accept}") for r in rows)
    logger.info("generated %d %s rows (%d Accept, %d Reject)", n, name, n_acc, n - n_acc)
    return rows
