"""Agreement between n models' labels: voting with explicit ties, Cohen's and Fleiss' kappa.

Labels are canonical class strings or ``None`` (invalid output). For kappas ``None`` is its
own category (``INVALID``), so two models that both fail agree on failing - that is what
raters do too; the full-agreement rate, by contrast, only counts valid unanimous labels.

Ties are never broken silently: :func:`majority_vote` returns every winner and the status
``tie``; a priority order is applied only in a separate, explicitly named field.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "INVALID",
    "Vote",
    "majority_vote",
    "full_agreement",
    "cohen_kappa",
    "fleiss_kappa",
    "fleiss_table",
    "pairwise_agreement",
]

INVALID = "INVALID"


@dataclass(frozen=True)
class Vote:
    """Outcome of a vote: ``label`` is ``None`` unless one label has the most votes.

    ``status`` is ``unanimous`` (every model, same valid label), ``majority`` (> n/2),
    ``plurality``, ``tie`` (several labels share the top count) or ``no_valid``.
    ``tiebreak_label`` is the first tied winner in the priority order (``None`` if no tie).
    """

    label: str | None
    status: str
    winners: tuple[str, ...]
    tiebreak_label: str | None = None


def majority_vote(votes: Sequence[str | None], priority: Sequence[int] | None = None) -> Vote:
    """Vote over per-model labels (``None`` = invalid, never a candidate).

    ``priority`` lists model indices in tie-break order (default: input order).
    """
    n = len(votes)
    valid = [v for v in votes if v is not None]
    if not valid:
        return Vote(None, "no_valid", ())
    counts = Counter(valid)
    top = max(counts.values())
    winners = tuple(sorted(label for label, c in counts.items() if c == top))
    if len(winners) > 1:
        order = list(priority) if priority is not None else list(range(n))
        first = next(votes[i] for i in order if votes[i] in winners)
        return Vote(None, "tie", winners, tiebreak_label=first)
    label = winners[0]
    if top == n:
        status = "unanimous"
    elif top > n / 2:
        status = "majority"
    else:
        status = "plurality"
    return Vote(label, status, winners)


def full_agreement(votes: Sequence[str | None]) -> bool:
    """Every model produced the same valid label."""
    return bool(votes) and votes[0] is not None and all(v == votes[0] for v in votes)


def _cat(v: str | None) -> str:
    return INVALID if v is None else v


def cohen_kappa(a: Sequence[str | None], b: Sequence[str | None]) -> float:
    """Cohen's kappa of two label sequences: ``sklearn.metrics.cohen_kappa_score`` plus two additions.

    * ``None`` (invalid output) becomes the category ``INVALID`` (sklearn needs a label per item);
    * when chance agreement is 1 - both raters give every item the same single category - kappa is
      0/0; sklearn returns NaN (with an ``UndefinedMetricWarning``), this returns 1.0 (perfect
      agreement), so summaries and means over model pairs stay finite.
    """
    if len(a) != len(b) or not a:
        raise ValueError("cohen_kappa: sequences must be non-empty and of equal length")
    x, y = [_cat(v) for v in a], [_cat(v) for v in b]
    if len(set(x) | set(y)) == 1:
        return 1.0
    from sklearn.metrics import cohen_kappa_score  # imported here: sklearn.metrics takes ~1.3 s to import

    return float(cohen_kappa_score(x, y))


def fleiss_table(labels_by_model: Sequence[Sequence[str | None]]) -> tuple[list[list[int]], list[str]]:
    """Subjects x categories count table (``n_ij`` = raters putting subject i in category j)."""
    n_items = len(labels_by_model[0])
    cats = sorted({_cat(v) for seq in labels_by_model for v in seq})
    index = {c: j for j, c in enumerate(cats)}
    table = [[0] * len(cats) for _ in range(n_items)]
    for seq in labels_by_model:
        for i, v in enumerate(seq):
            table[i][index[_cat(v)]] += 1
    return table, cats


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa of a subjects x categories count table (same raters count per subject).

    P_i = sum_j n_ij (n_ij - 1) / (n (n - 1)); P = mean P_i; p_j = sum_i n_ij / (N n);
    P_e = sum_j p_j^2; kappa = (P - P_e) / (1 - P_e). When P_e = 1 (every rating in one
    category) kappa is 0/0 and this returns 1.0, like :func:`cohen_kappa`.

    Hand-written on purpose: neither scipy nor scikit-learn provides Fleiss' kappa, and the
    library that does (``statsmodels.stats.inter_rater.fleiss_kappa``) is not a dependency;
    adding it for these few lines is not worth it. With two raters this equals Scott's pi.
    """
    if not table:
        raise ValueError("fleiss_kappa: empty table")
    n = sum(table[0])
    if n < 2 or any(sum(row) != n for row in table):
        raise ValueError("fleiss_kappa: every subject needs the same number (>= 2) of ratings")
    n_items = len(table)
    p_i = [sum(c * (c - 1) for c in row) / (n * (n - 1)) for row in table]
    p_bar = sum(p_i) / n_items
    totals = [sum(row[j] for row in table) for j in range(len(table[0]))]
    p_e = sum((t / (n_items * n)) ** 2 for t in totals)
    if p_e >= 1.0:
        return 1.0 if p_bar == 1.0 else 0.0
    return (p_bar - p_e) / (1.0 - p_e)


def pairwise_agreement(labels: Mapping[str, Sequence[str | None]]) -> dict[str, dict[str, float]]:
    """For every model pair ``a__b``: raw agreement (both valid and equal) and Cohen's kappa."""
    out: dict[str, dict[str, float]] = {}
    for a, b in itertools.combinations(sorted(labels), 2):
        la, lb = labels[a], labels[b]
        agree = sum(x is not None and x == y for x, y in zip(la, lb)) / len(la)
        out[f"{a}__{b}"] = {"agreement": agree, "cohen_kappa": cohen_kappa(la, lb)}
    return out
