"""Batched greedy generation for seq2seq and causal models, continuation only.

Causal models are fed left-padded prompts so every row's continuation starts at the same
column; only the tokens after the prompt are decoded, and decoding stops at the first EOS
(the upstream decoded ``outputs[0]`` whole, so its "predictions" began with the prompt).
Greedy (``do_sample=False, num_beams=1``) keeps predictions deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlab.progress import progress

logger = logging.getLogger(__name__)

__all__ = ["cut_at_eos", "pad_batch", "generate_continuations"]


def cut_at_eos(ids: Sequence[int], eos_id: int | None, pad_id: int | None = None) -> list[int]:
    """Tokens before the first EOS (pad tokens dropped)."""
    out: list[int] = []
    for tok in ids:
        if eos_id is not None and tok == eos_id:
            break
        if pad_id is not None and tok == pad_id:
            continue
        out.append(int(tok))
    return out


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, side: Literal["left", "right"]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id lists to one width on ``side``; returns ``(input_ids, attention_mask)``."""
    width = max(len(s) for s in seqs)
    ids, mask = [], []
    for s in seqs:
        pad = [pad_id] * (width - len(s))
        ones, zeros = [1] * len(s), [0] * (width - len(s))
        ids.append(pad + list(s) if side == "left" else list(s) + pad)
        mask.append(zeros + ones if side == "left" else ones + zeros)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)


@torch.no_grad()
def generate_continuations(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[int]],
    kind: Literal["causal", "seq2seq"],
    max_new_tokens: int,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
) -> list[str]:
    """Greedy continuations of already-encoded ``prompts`` (decoded text, special tokens removed)."""
    model.eval().to(device)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    if pad is None:
        pad = eos
    side: Literal["left", "right"] = "left" if kind == "causal" else "right"
    texts: list[str] = []
    # Longest first keeps padding small; results are put back in input order.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    by_index: dict[int, str] = {}
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in progress(batches, desc=f"generate ({kind})", unit="batches"):
        input_ids, attention_mask = pad_batch([prompts[i] for i in batch], pad, side)
        out = model.generate(
            input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            eos_token_id=eos, pad_token_id=pad,
        )
        if kind == "causal":
            out = out[:, input_ids.shape[1]:]
        for i, row in zip(batch, out.tolist()):
            if kind == "seq2seq" and row and row[0] == model.config.decoder_start_token_id:
                row = row[1:]
            by_index[i] = tokenizer.decode(cut_at_eos(row, eos, pad), skip_special_tokens=True).strip()
    texts = [by_index[i] for i in range(len(prompts))]
    logger.info("generated %d %s continuations", len(texts), kind)
    return texts
