"""Infilling with a trained ILM: batched, KV-cached generation of the answers to masked spans.

The ILM inference sequence is ``context_ids + [<|startofinfill|>]``; the model then writes
the answers left to right, each terminated by ``<|endofinfill|>``, one per mask token in the
context (Donahue et al. 2020; reference ``ilm/infer.py``).

The reference decodes one sample at a time and runs a full forward pass over the whole
sequence for every new token (no KV cache). Here many (text, sample) rows are decoded
together: rows are sorted by length and grouped into batches, each prompt is encoded once
(alone on a CPU, so no compute goes to padding; in one left-padded pass on a GPU), and
every later step feeds only the batch's new tokens with ``past_key_values``. Position ids
come from the attention mask, so a left-padded row sees exactly the positions it would see
alone, and a greedy batched run reproduces per-row greedy decoding token for token
(:func:`generate_reference` is the reference-style loop used to check this and to benchmark).
A row stops when it has produced ``k`` end tokens (``k`` = its mask tokens), when it has
generated ``max_new_tokens`` tokens, or when it reaches the model's maximum length; rows
that stop are dropped from the batch and from the cache, so long rows do not keep short
ones busy.

Decoding is greedy by default; nucleus sampling follows the reference's rule (keep the
smallest top set whose cumulative probability stays below ``top_p``, at least one token)
and is seeded through a ``torch.Generator``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlab.device import Runtime, select_runtime
from lmlab.errors import InputError
from lmlab.ilm.format import fill_context
from lmlab.ilm.sequences import SPECIAL_TOKENS_FILE, IlmTokens
from lmlab.logs import progress_disabled

logger = logging.getLogger(__name__)

Decoding = Literal["greedy", "nucleus"]
Prefill = Literal["auto", "rows", "batch"]

__all__ = [
    "SPECIAL_TOKENS_FILE",
    "IlmInfiller",
    "load_ilm",
    "generate_infills",
    "generate_reference",
    "split_answers",
    "nucleus_filter",
]


@dataclass
class IlmInfiller:
    """A loaded ILM: model in eval mode on its device, tokenizer, and the special-token ids."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    runtime: Runtime
    start_id: int
    end_id: int
    mask_ids: frozenset[int]

    @property
    def max_positions(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", 1024))

    def encode_context(self, context: str) -> list[int]:
        """Token ids of a context holding mask tokens (each mask token is one id)."""
        return list(self.tokenizer(context, add_special_tokens=False)["input_ids"])

    def count_masks(self, ids: Sequence[int]) -> int:
        return sum(1 for t in ids if t in self.mask_ids)

    def infill(
        self,
        contexts: Sequence[str],
        decoding: Decoding = "greedy",
        top_p: float = 0.95,
        seed: int = 0,
        max_new_tokens: int = 64,
        batch_size: int = 32,
    ) -> list[tuple[list[str], str]]:
        """Fill every context; return ``(answers, filled_text)`` per context.

        Missing answers (the row stopped early) leave their mask tokens in the filled text.
        """
        encoded = [self.encode_context(c) for c in contexts]
        ks = [self.count_masks(ids) for ids in encoded]
        generated = generate_infills(
            self.model, [ids + [self.start_id] for ids in encoded], ks, self.end_id,
            pad_id=self.tokenizer.pad_token_id or 0, max_new_tokens=max_new_tokens,
            max_positions=self.max_positions, batch_size=batch_size, decoding=decoding, top_p=top_p, seed=seed,
            device=self.runtime.device,
        )
        results = []
        for context, k, gen in zip(contexts, ks, generated):
            answers = [self.tokenizer.decode(a, skip_special_tokens=True) for a in split_answers(gen, k, self.end_id)]
            results.append((answers, fill_context(context, answers)))
        return results


def load_ilm(model_dir: str | Path, device: str = "auto") -> IlmInfiller:
    """Load an ILM directory (``from_pretrained`` model + tokenizer + ``ilm_special_tokens.json``).

    Raises :class:`InputError` when the directory, the special-token map or one of the ILM
    special tokens is missing, or when the map disagrees with the tokenizer (the map is read
    by :meth:`lmlab.ilm.sequences.IlmTokens.from_model_dir`, the training side's reader).
    """
    from lmlab.modeling import load_model
    from lmlab.tokenization import load_tokenizer

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputError("the ILM model directory does not exist.", path=model_dir,
                         hint="train it first (dvc repro ilm_train) or pass an existing directory.")
    tokens = IlmTokens.from_model_dir(model_dir)  # InputError when the map is missing or incomplete
    tokenizer = load_tokenizer(model_dir)
    if IlmTokens.from_tokenizer(tokenizer) != tokens:
        raise InputError("the special-token map disagrees with the tokenizer saved beside it.",
                         path=model_dir / SPECIAL_TOKENS_FILE,
                         hint="the map and the tokenizer come from different runs; re-train the model.")
    runtime = select_runtime(device)  # type: ignore[arg-type]
    model = load_model(model_dir, "causal").to(runtime.device)
    model.eval()
    return IlmInfiller(model=model, tokenizer=tokenizer, runtime=runtime, start_id=tokens.start_infill,
                       end_id=tokens.end_infill, mask_ids=frozenset(tokens.masks.values()))


def split_answers(generated: Sequence[int], k: int, end_id: int) -> list[list[int]]:
    """The first ``k`` answers of a generation: token runs each closed by ``end_id``.

    An unterminated tail is dropped (as in the reference); fewer than ``k`` closed answers
    give a shorter list.
    """
    answers: list[list[int]] = []
    current: list[int] = []
    for token in generated:
        if len(answers) >= k:
            break
        if token == end_id:
            answers.append(current)
            current = []
        else:
            current.append(token)
    return answers


def nucleus_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Logits with everything outside the reference's nucleus set to ``-inf`` (rows independent).

    Keeps the ``max(1, #(cumsum < top_p))`` most probable tokens (``ilm/infer.py``), which
    excludes the token that crosses ``top_p``.
    """
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    keep_n = (torch.cumsum(sorted_probs, dim=-1) < top_p).sum(dim=-1).clamp(min=1)
    ranks = torch.arange(logits.shape[-1], device=logits.device).expand_as(logits)
    keep_sorted = ranks < keep_n.unsqueeze(-1)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def _choose(logits: torch.Tensor, decoding: Decoding, top_p: float, generator: torch.Generator | None) -> torch.Tensor:
    if decoding == "greedy":
        return logits.argmax(dim=-1)
    probs = torch.softmax(nucleus_filter(logits, top_p).float(), dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


def _prefill_batch(model: PreTrainedModel, prompts: list[list[int]], pad_id: int, device: torch.device):
    """One forward pass over the left-padded prompts: (cache, attention mask, last logits)."""
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        input_ids[i, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        attention[i, width - len(prompt):] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
    return out.past_key_values, attention, out.logits[:, -1, :]


def _prefill_rows(model: PreTrainedModel, prompts: list[list[int]], device: torch.device):
    """Each prompt alone (no padding compute), then the caches left-padded into one batch cache."""
    from transformers import DynamicCache

    width = max(len(p) for p in prompts)
    attention = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
    per_layer: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []
    logits = []
    for i, prompt in enumerate(prompts):
        out = model(input_ids=torch.tensor([prompt], dtype=torch.long, device=device), use_cache=True)
        logits.append(out.logits[0, -1, :])
        attention[i, width - len(prompt):] = 1
        for layer_index, layer in enumerate(out.past_key_values.layers):
            if layer_index == len(per_layer):
                per_layer.append(([], []))
            for store, states in zip(per_layer[layer_index], (layer.keys, layer.values)):
                padded = states.new_zeros((*states.shape[:-2], width, states.shape[-1]))
                padded[..., width - len(prompt):, :] = states
                store.append(padded)
    data = [(torch.cat(keys), torch.cat(values)) for keys, values in per_layer]
    return DynamicCache(ddp_cache_data=data, config=model.config), attention, torch.stack(logits)


def _static_cache(model: PreTrainedModel, prefilled, capacity: int):
    """Copy a prefilled ``DynamicCache`` into a ``StaticCache`` of ``capacity`` positions.

    Each decoding step then writes its keys/values in place: a growing cache would copy the
    whole cache (``torch.cat``) in every layer at every step, which dominates CPU decoding.
    """
    from transformers import StaticCache

    cache = StaticCache(config=model.config, max_cache_len=capacity)
    for layer, source in zip(cache.layers, prefilled.layers, strict=True):
        layer.update(source.keys, source.values)
    return cache


def _select_rows(cache, index: torch.Tensor) -> None:
    """Keep only the batch rows ``index`` of a ``StaticCache`` (finished rows leave the batch)."""
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(0, index)
        layer.values = layer.values.index_select(0, index)
        layer.batch_size = len(index)


@torch.inference_mode()
def _generate_batch(
    model: PreTrainedModel,
    prompts: list[list[int]],
    ks: list[int],
    budgets: list[int],
    end_id: int,
    pad_id: int,
    max_positions: int,
    decoding: Decoding,
    top_p: float,
    generator: torch.Generator | None,
    device: torch.device,
    prefill: Prefill,
) -> list[list[int]]:
    """Decode one left-padded batch with a KV cache; finished rows leave the batch."""
    if prefill == "rows":
        past, attention, logits = _prefill_rows(model, prompts, device)
    else:
        past, attention, logits = _prefill_batch(model, prompts, pad_id, device)
    width = attention.shape[1]
    capacity = width + max(budgets)
    cache = _static_cache(model, past, capacity)
    attention = torch.cat([attention, attention.new_zeros((len(prompts), capacity - width))], dim=-1)
    next_pos = attention.sum(-1)  # position of each row's next token
    active = list(range(len(prompts)))  # original row index of each batch row
    generated: list[list[int]] = [[] for _ in prompts]
    ends = [0] * len(prompts)
    for column in range(width, capacity):
        chosen = _choose(logits, decoding, top_p, generator).tolist()
        keep: list[int] = []
        for b, row in enumerate(active):
            generated[row].append(chosen[b])
            ends[row] += chosen[b] == end_id
            if ends[row] < ks[row] and len(generated[row]) < budgets[row]:
                keep.append(b)
        if not keep:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device)
            _select_rows(cache, index)
            attention, next_pos = attention[index], next_pos[index]
            active = [active[b] for b in keep]
        step_ids = torch.tensor([[generated[row][-1]] for row in active], dtype=torch.long, device=device)
        attention[:, column] = 1
        out = model(input_ids=step_ids, attention_mask=attention, position_ids=next_pos.unsqueeze(-1),
                    past_key_values=cache, cache_position=torch.tensor([column], device=device), use_cache=True)
        logits = out.logits[:, -1, :]
        next_pos = next_pos + 1
    return generated


def _budget(prompt_len: int, max_new_tokens: int, max_positions: int) -> int:
    return max(0, min(max_new_tokens, max_positions - prompt_len))


def generate_infills(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    ks: Sequence[int],
    end_id: int,
    pad_id: int = 0,
    max_new_tokens: int = 64,
    max_positions: int = 1024,
    batch_size: int = 32,
    decoding: Decoding = "greedy",
    top_p: float = 0.95,
    seed: int = 0,
    device: torch.device | str | None = None,
    prefill: Prefill = "auto",
) -> list[list[int]]:
    """Generated token ids for every prompt (``context + [<|startofinfill|>]``), in input order.

    Row ``i`` stops after ``ks[i]`` end tokens, ``max_new_tokens`` tokens, or when the
    sequence reaches ``max_positions``. Prompts that already fill ``max_positions`` get no
    tokens. Rows are decoded in batches of ``batch_size``, grouped by prompt length.

    ``prefill`` is how a batch's prompts are encoded: ``batch`` = one forward pass over the
    left-padded prompts (best on a GPU), ``rows`` = each prompt alone, its cache then
    left-padded into the batch cache (no compute spent on padding: best on a CPU);
    ``auto`` = ``rows`` on CPU, else ``batch``.
    """
    if len(prompts) != len(ks):
        raise ValueError("prompts and ks must have the same length")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed) if decoding == "nucleus" else None
    if prefill == "auto":
        prefill = "rows" if device.type == "cpu" else "batch"
    budgets = [_budget(len(p), max_new_tokens, max_positions) for p in prompts]
    results: list[list[int]] = [[] for _ in prompts]
    order = sorted((i for i in range(len(prompts)) if budgets[i] > 0 and ks[i] > 0), key=lambda i: len(prompts[i]))
    skipped = len(prompts) - len(order)
    if skipped:
        logger.info("%d prompt(s) have no mask token or no room left before max_positions: nothing generated", skipped)
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc="infill batches", disable=progress_disabled()):
        rows = _generate_batch(
            model, [list(prompts[i]) for i in batch], [ks[i] for i in batch], [budgets[i] for i in batch],
            end_id, pad_id, max_positions, decoding, top_p, generator, device, prefill,
        )
        for i, row in zip(batch, rows):
            results[i] = row
    return results


@torch.inference_mode()
def generate_reference(
    model: PreTrainedModel,
    prompt: Sequence[int],
    k: int,
    end_id: int,
    max_new_tokens: int = 64,
    max_positions: int = 1024,
) -> list[int]:
    """Reference-style greedy decoding of one prompt: a full forward pass per token, no cache.

    Same stopping rule as :func:`generate_infills`; used to check it and as the benchmark baseline.
    """
    device = next(model.parameters()).device
    ids = list(prompt)
    generated: list[int] = []
    budget = _budget(len(prompt), max_new_tokens, max_positions)
    ends = 0
    while k > 0 and len(generated) < budget and ends < k:
        logits = model(input_ids=torch.tensor([ids], dtype=torch.long, device=device), use_cache=False).logits
        token = int(logits[0, -1].argmax())
        ids.append(token)
        generated.append(token)
        ends += token == end_id
    return generated
