"""Perplexity of a causal LM: summed NLL over exactly the scored tokens, exp of the mean.

The upstream multiplied a batch-mean loss over *shifted* tokens by the *unshifted* token count
(N instead of N-1 per row); here every scored token is counted once: positions t >= 1 whose label
is not -100 (padding masked out), summed with ``reduction="sum"`` and divided by the global count.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlab.errors import InputError
from lmlab.progress import progress

logger = logging.getLogger(__name__)

__all__ = ["TextScores", "token_nll", "score_texts"]


@dataclass(frozen=True)
class TextScores:
    """Per-text summed NLL and scored-token counts; ``ppl`` pools all tokens."""

    nll: tuple[float, ...]
    tokens: tuple[int, ...]

    @property
    def mean_nll(self) -> float:
        return sum(self.nll) / sum(self.tokens)

    @property
    def ppl(self) -> float:
        return math.exp(self.mean_nll)


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-position NLL of ``labels[:, 1:]`` given ``logits[:, :-1]``; 0 where the label is -100.

    Returns a (batch, seq-1) tensor; ``(labels[:, 1:] != -100)`` is the matching scored mask.
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    nll = F.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
                          ignore_index=-100, reduction="none")
    return nll.view(shift_labels.shape)


@torch.no_grad()
def score_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 16,
) -> TextScores:
    """Summed NLL and scored-token count of every text, each truncated to ``max_length`` tokens.

    Texts are right-padded in batches (sorted by length to waste little compute); padding gets
    label -100. The same call on two models scores exactly the same tokens.
    """
    if not texts:
        raise InputError("no texts to score.", key="monotonic.data.text", hint="point it at a non-empty corpus.")
    model.eval()
    device = next(model.parameters()).device
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    nll = [0.0] * len(encoded)
    counts = [0] * len(encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in progress(range(0, len(order), batch_size), desc="perplexity", unit="batches"):
        idx = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, :len(encoded[i])] = torch.tensor(encoded[i])
            mask[row, :len(encoded[i])] = 1
        labels = ids.masked_fill(mask == 0, -100)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        per_token = token_nll(logits, labels.to(device))
        scored = (labels[:, 1:] != -100).sum(dim=1)
        for row, i in enumerate(idx):
            nll[i] = float(per_token[row].sum())
            counts[i] = int(scored[row])
    if sum(counts) == 0:
        raise InputError("no scorable tokens: every text is a single token long.", key="monotonic.data.text")
    return TextScores(tuple(nll), tuple(counts))
