"""Gamma-weighted causal-LM loss for Accept/Reject decisions, as an HF ``compute_loss_func``.

Per example ``b`` with gold class ``y_b`` the class weight is ``w_b = gamma`` when ``y_b`` is the
up-weighted class (variant ``accept`` or ``reject``) and 1 otherwise. Scopes:

* ``sequence`` - every supervised response token of row ``b`` gets ``w_b`` (the lab's
  "token-level uniform weighting");
* ``decision`` - only the decision token gets ``w_b``, format tokens keep weight 1;
* ``bce_decision`` - the upstream's loss: ``w_b * BCE(sigmoid(z_b), y_b)`` with
  ``z_b = max_accept_logit - max_reject_logit`` at the decision position, plus plain CE on the
  other supervised tokens so the answer format is still learned.

The sum is divided by the **unweighted** number of supervised tokens ``N`` (``num_items_in_batch``
from the Trainer, i.e. counted over the whole accumulated batch, else the batch's own count).
So gamma = 1 with ``sequence``/``decision`` is exactly the model's standard loss, and gradient
accumulation gives the same gradient as one big batch: the Trainer does not divide a
``compute_loss_func`` loss by the accumulation steps again (transformers 5.x ``training_step``).

The gold class is read from the labels: the decision position is the first supervised label
that is an accept or reject id (:mod:`lmlab.weighted.tokens` guarantees it on every row).
Upstream bugs this avoids (see the spec notes): both variants weighting the same class,
"uniform weighting" helpers that ignored gamma, and per-micro-batch means under accumulation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from lmlab.weighted.tokens import IGNORE_INDEX

logger = logging.getLogger(__name__)

Variant = Literal["accept", "reject"]
Scope = Literal["sequence", "decision", "bce_decision"]
VARIANTS = ("accept", "reject")
SCOPES = ("sequence", "decision", "bce_decision")

__all__ = ["WeightedLoss", "check_loss_settings", "class_weights", "find_decisions", "weighted_decision_loss", "VARIANTS", "SCOPES"]


def check_loss_settings(gamma: float, variant: str, scope: str) -> None:
    """Raise ``ValueError("<name>: ...")`` for gamma <= 0 or an unknown variant or scope."""
    if not gamma > 0:
        raise ValueError(f"gamma: must be > 0, got {gamma}")
    if variant not in VARIANTS:
        raise ValueError(f"variant: must be one of {VARIANTS}, got {variant!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope: must be one of {SCOPES}, got {scope!r}")


def class_weights(is_accept: torch.Tensor, gamma: float, variant: str) -> torch.Tensor:
    """``gamma`` for rows of the up-weighted class, 1 for the others (float tensor like ``is_accept``)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: must be one of {VARIANTS}, got {variant!r}")
    upweighted = is_accept if variant == "accept" else ~is_accept
    return torch.where(upweighted, torch.tensor(float(gamma)), torch.tensor(1.0)).to(torch.float32)


def find_decisions(
    shift_labels: torch.Tensor, accept_ids: torch.Tensor, reject_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decision position (index into the shifted labels) and gold class of every row.

    Raises ``ValueError`` if a row has no decision token (the data check should prevent it).
    """
    in_accept = torch.isin(shift_labels, accept_ids)
    is_decision = in_accept | torch.isin(shift_labels, reject_ids)
    has = is_decision.any(dim=1)
    if not bool(has.all()):
        rows = torch.nonzero(~has).flatten().tolist()
        raise ValueError(f"rows {rows} of the batch have no decision token among their labels")
    pos = is_decision.int().argmax(dim=1)
    is_accept = in_accept.gather(1, pos[:, None]).squeeze(1)
    return pos, is_accept


def weighted_decision_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    accept_ids: Sequence[int],
    reject_ids: Sequence[int],
    gamma: float,
    variant: str,
    scope: str,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """The weighted loss for unshifted ``logits`` (B, T, V) and ``labels`` (B, T) (see module doc)."""
    if scope not in SCOPES:
        raise ValueError(f"scope: must be one of {SCOPES}, got {scope!r}")
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:].to(logits.device)
    mask = shift_labels.ne(IGNORE_INDEX)
    token_loss = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX, reduction="none",
    ).view_as(shift_labels)
    acc = torch.as_tensor(list(accept_ids), device=logits.device)
    rej = torch.as_tensor(list(reject_ids), device=logits.device)
    pos, is_accept = find_decisions(shift_labels, acc, rej)
    w = class_weights(is_accept.cpu(), gamma, variant).to(logits.device)
    rows = torch.arange(labels.size(0), device=logits.device)
    weights = mask.float()
    if scope == "sequence":
        weights = weights * w[:, None]
        total = (token_loss * weights).sum()
    elif scope == "decision":
        weights[rows, pos] = w
        total = (token_loss * weights).sum()
    else:
        weights[rows, pos] = 0.0
        dec_logits = shift_logits[rows, pos]
        margin = dec_logits[:, acc].max(dim=1).values - dec_logits[:, rej].max(dim=1).values
        bce = F.binary_cross_entropy_with_logits(margin, is_accept.float(), reduction="none")
        total = (token_loss * weights).sum() + (w * bce).sum()
    if num_items_in_batch is None:
        denom = mask.sum()
    else:
        denom = torch.as_tensor(num_items_in_batch, device=logits.device)
    return total / denom.clamp(min=1).to(total.dtype)


@dataclass(frozen=True)
class WeightedLoss:
    """A picklable ``compute_loss_func`` for ``transformers.Trainer`` (``fn(outputs, labels, num_items_in_batch)``)."""

    accept_ids: tuple[int, ...]
    reject_ids: tuple[int, ...]
    gamma: float
    variant: str = "accept"
    scope: str = "sequence"

    def __post_init__(self) -> None:
        check_loss_settings(self.gamma, self.variant, self.scope)
        if not self.accept_ids or not self.reject_ids or set(self.accept_ids) & set(self.reject_ids):
            raise ValueError("accept_ids/reject_ids: must be non-empty and disjoint")

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None, **_: Any) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        return weighted_decision_loss(
            logits, labels, accept_ids=self.accept_ids, reject_ids=self.reject_ids, gamma=self.gamma,
            variant=self.variant, scope=self.scope, num_items_in_batch=num_items_in_batch,
        )
