"""Benchmark: ILM infilling with ``model.generate`` vs the old hand-written KV-cache loop vs the reference loop.

Four sides decode the same prompts greedily with the same model, side by side in one run
(interleaved, in a rotating order, in every repeat), and their outputs are checked to be
identical token for token:

* ``generate``: :func:`lmlab.ilm.infill.generate_infills` as the library runs it on a CPU
  (length-sorted, left-padded batches decoded by ``transformers``' ``model.generate`` with the
  :class:`~lmlab.ilm.infill.StopAfterAnswers` stopping criterion, starting from a cache
  where each prompt was encoded alone: ``prefill="rows"``, our one hand-written piece);
* ``generate+batch prefill``: the same with ``prefill="batch"``, i.e. ``generate`` alone,
  its own prefill over the left-padded batch: the side that says whether the rows prefill
  still pays for itself;
* ``old loop``: :func:`old_kv_cache_infills` below, a copy of the hand-written loop that
  ``generate_infills`` replaced (prefill of each prompt alone on a CPU, a ``StaticCache``
  written in place, finished rows dropped from the batch and from the cache). Kept here only
  as the baseline; it passes the cache as ``cache=`` / reads ``out.cache`` instead of the
  deprecated ``past_key_values`` spelling, which changes nothing else;
* ``reference``: :func:`lmlab.ilm.infill.generate_reference`, the reference's
  (``ilm/infer.py``) one sample at a time, full forward pass over the whole sequence per token.

Model: a GPT-2 built from config (default 4 layers, d=256, 4 heads) with a 2048-token BPE
trained on the embedded learner corpus; prompts: learner texts of 70-200 tokens with 1-3
masked words (the ILM context + ``<|startofinfill|>``). A randomly initialised model rarely
emits ``<|endofinfill|>``, so rows usually all run to ``--max-new-tokens``. ``--end-boost B``
multiplies the ``<|endofinfill|>`` row of the output layer by ``B`` so that rows stop after
different numbers of tokens, as a trained ILM's do: the case where the old loop's dropping
of finished rows could matter (``generate`` keeps computing a finished row until its whole
batch is done).

    python bench/bench_infill_generation.py [--quick] [--samples 32] [--max-new-tokens 32] [--repeats 3]
        [--batch-size 32] [--end-boost 0] [--threads 1] [--skip-reference]

Prints per-repeat wall-clock and CPU times, then the medians, the ratios between the sides
and the verdict on the README target (``generate`` >= 20x the reference, wall-clock).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from lmlab.ilm.corpus import generate_learner_corpus  # noqa: E402
from lmlab.ilm.format import ILM_SPECIAL_TOKENS, mask_document  # noqa: E402
from lmlab.ilm.infill import generate_infills, generate_reference  # noqa: E402
from lmlab.ilm.infill_eval import mask_text  # noqa: E402
from lmlab.modeling import ModelSpec, build_model, count_parameters  # noqa: E402
from lmlab.tokenization import add_special_tokens, train_bpe_tokenizer  # noqa: E402

TARGET = 20.0  # reference / generate, wall-clock (README benchmark table)

# --- baseline: the hand-written KV-cache loop that lmlab.ilm.infill used before model.generate (greedy only) ---


def _old_prefill_batch(model, prompts: list[list[int]], pad_id: int, device: torch.device):
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
    return out.cache, attention, out.logits[:, -1, :]


def _old_prefill_rows(model, prompts: list[list[int]], device: torch.device):
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
        for layer_index, layer in enumerate(out.cache.layers):
            if layer_index == len(per_layer):
                per_layer.append(([], []))
            for store, states in zip(per_layer[layer_index], (layer.keys, layer.values)):
                padded = states.new_zeros((*states.shape[:-2], width, states.shape[-1]))
                padded[..., width - len(prompt):, :] = states
                store.append(padded)
    data = [(torch.cat(keys), torch.cat(values)) for keys, values in per_layer]
    return DynamicCache(ddp_cache_data=data, config=model.config), attention, torch.stack(logits)


def _old_static_cache(model, prefilled, capacity: int):
    """Copy a prefilled ``DynamicCache`` into a ``StaticCache`` of ``capacity`` positions."""
    from transformers import StaticCache

    cache = StaticCache(config=model.config, max_cache_len=capacity)
    for layer, source in zip(cache.layers, prefilled.layers, strict=True):
        layer.update(source.keys, source.values)
    return cache


def _old_select_rows(cache, index: torch.Tensor) -> None:
    """Keep only the batch rows ``index`` of a ``StaticCache`` (finished rows leave the batch)."""
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(0, index)
        layer.values = layer.values.index_select(0, index)
        layer.batch_size = len(index)


@torch.inference_mode()
def _old_generate_batch(model, prompts, ks, budgets, end_id, pad_id, device, prefill) -> list[list[int]]:
    """Decode one left-padded batch with a KV cache; finished rows leave the batch."""
    if prefill == "rows":
        past, attention, logits = _old_prefill_rows(model, prompts, device)
    else:
        past, attention, logits = _old_prefill_batch(model, prompts, pad_id, device)
    width = attention.shape[1]
    capacity = width + max(budgets)
    cache = _old_static_cache(model, past, capacity)
    attention = torch.cat([attention, attention.new_zeros((len(prompts), capacity - width))], dim=-1)
    next_pos = attention.sum(-1)  # position of each row's next token
    active = list(range(len(prompts)))  # original row index of each batch row
    generated: list[list[int]] = [[] for _ in prompts]
    ends = [0] * len(prompts)
    for column in range(width, capacity):
        chosen = logits.argmax(dim=-1).tolist()
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
            _old_select_rows(cache, index)
            attention, next_pos = attention[index], next_pos[index]
            active = [active[b] for b in keep]
        step_ids = torch.tensor([[generated[row][-1]] for row in active], dtype=torch.long, device=device)
        attention[:, column] = 1
        out = model(input_ids=step_ids, attention_mask=attention, position_ids=next_pos.unsqueeze(-1),
                    cache=cache, cache_position=torch.tensor([column], device=device), use_cache=True)
        logits = out.logits[:, -1, :]
        next_pos = next_pos + 1
    return generated


def old_kv_cache_infills(model, prompts: Sequence[Sequence[int]], ks: Sequence[int], end_id: int, pad_id: int = 0,
                         max_new_tokens: int = 64, max_positions: int = 1024, batch_size: int = 32,
                         prefill: str = "auto") -> list[list[int]]:
    """The old ``generate_infills`` (greedy): length-sorted batches of ``batch_size`` through the loop above."""
    device = next(model.parameters()).device
    if prefill == "auto":
        prefill = "rows" if device.type == "cpu" else "batch"
    budgets = [max(0, min(max_new_tokens, max_positions - len(p))) for p in prompts]
    results: list[list[int]] = [[] for _ in prompts]
    order = sorted((i for i in range(len(prompts)) if budgets[i] > 0 and ks[i] > 0), key=lambda i: len(prompts[i]))
    for s in range(0, len(order), batch_size):
        batch = order[s:s + batch_size]
        rows = _old_generate_batch(model, [list(prompts[i]) for i in batch], [ks[i] for i in batch],
                                   [budgets[i] for i in batch], end_id, pad_id, device, prefill)
        for i, row in zip(batch, rows):
            results[i] = row
    return results


# --- benchmark ---


def build(args: argparse.Namespace):
    corpus = generate_learner_corpus(n_documents=800, seed=0)
    texts = corpus["text"].tolist()
    tokenizer = train_bpe_tokenizer(texts, vocab_size=2048)
    special = add_special_tokens(tokenizer, ILM_SPECIAL_TOKENS)
    start, end = special[0], special[1]
    spec = ModelSpec("tiny-gpt2", n_layer=args.layers, d_model=args.d_model, n_head=4, d_ff=4 * args.d_model,
                     max_positions=512)
    model = build_model(spec, tokenizer, seed=0).eval()
    if args.end_boost:
        with torch.no_grad():
            model.get_output_embeddings().weight[end] *= args.end_boost
    rng = random.Random(0)
    prompts, ks = [], []
    for text in texts:
        n_masks = rng.randint(1, 3)
        spans = mask_text(text, "human-tokens", n_masks, 1, rng)
        if spans is None:
            continue
        ids = tokenizer(mask_document(text, spans)[0], add_special_tokens=False)["input_ids"] + [start]
        if 70 <= len(ids) <= 200:
            prompts.append(ids)
            ks.append(n_masks)
        if len(prompts) == args.samples:
            break
    return model, tokenizer, prompts, ks, end


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 samples, 1 repeat, 8 new tokens")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--end-boost", type=float, default=0.0,
                        help="scale the <|endofinfill|> output row by this (0 = off) so rows stop at different lengths")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, same for all sides (0 = default)")
    parser.add_argument("--skip-reference", action="store_true", help="time only generate vs the old loop")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.repeats, args.max_new_tokens = 12, 1, 8
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer, prompts, ks, end = build(args)
    lengths = sorted(len(p) for p in prompts)
    print(f"model: GPT-2 {args.layers} layers d={args.d_model}, vocab {len(tokenizer)}, "
          f"{count_parameters(model):,} parameters; torch threads {torch.get_num_threads()}")
    print(f"inputs: {len(prompts)} prompts, {lengths[0]}-{lengths[-1]} tokens (median {statistics.median(lengths)}), "
          f"k masks {min(ks)}-{max(ks)}, max_new_tokens {args.max_new_tokens}, batch size {args.batch_size}, "
          f"end boost {args.end_boost or 'off'}, greedy on all sides")
    limit = model.config.n_positions
    pad = tokenizer.pad_token_id
    sides = {
        "generate": lambda: generate_infills(model, prompts, ks, end, pad, args.max_new_tokens, limit,
                                             batch_size=args.batch_size),
        "generate+batch prefill": lambda: generate_infills(model, prompts, ks, end, pad, args.max_new_tokens, limit,
                                                           batch_size=args.batch_size, prefill="batch"),
        "old loop": lambda: old_kv_cache_infills(model, prompts, ks, end, pad, args.max_new_tokens, limit,
                                                 batch_size=args.batch_size),
    }
    if not args.skip_reference:
        sides["reference"] = lambda: [generate_reference(model, p, k, end, args.max_new_tokens, limit)
                                      for p, k in zip(prompts, ks)]
    times: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for repeat in range(args.repeats):
        outputs = {}
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:  # rotate the order every repeat
            outputs[name], elapsed, cpu_time = _timed(sides[name])
            times[name].append(elapsed)
            cpu[name].append(cpu_time)
        first = outputs["generate"]
        for name, out in outputs.items():
            if out != first:
                raise SystemExit(f"MISMATCH: {name} and generate generations differ")
        generated = [len(g) for g in first]
        stopped = sum(g.count(end) == k for g, k in zip(first, ks))
        print(f"repeat {repeat + 1}: " + " | ".join(f"{name} {times[name][-1]:6.2f} s (CPU {cpu[name][-1]:6.2f} s)"
                                                  for name in names)
              + f" | {sum(generated)} generated tokens ({min(generated)}-{max(generated)} per row, {stopped} rows "
              "stopped on their k-th end token), outputs identical")
    for label, measured in (("wall-clock", times), ("CPU time", cpu)):
        med = {name: statistics.median(t) for name, t in measured.items()}
        print(f"median {label}: " + ", ".join(f"{name} {med[name]:.2f} s ({len(prompts) / med[name]:.2f} samples/s)"
                                                for name in names))
        ratios = [f"old loop / generate = {med['old loop'] / med['generate']:.2f} (> 1: generate is faster)"]
        ratios.append(f"generate+batch prefill / generate = {med['generate+batch prefill'] / med['generate']:.2f} "
                      "(> 1: the rows prefill pays)")
        if not args.skip_reference:
            ratios += [f"reference / generate = {med['reference'] / med['generate']:.1f}x",
                       f"reference / old loop = {med['reference'] / med['old loop']:.1f}x"]
        print(f"  ratios of the {label} medians: " + "; ".join(ratios))
    if not args.skip_reference:
        speed_up = statistics.median(times["reference"]) / statistics.median(times["generate"])
        verdict = "MEETS" if speed_up >= TARGET else "BELOW"
        print(f"target: generate vs reference {speed_up:.1f}x wall-clock, {verdict} the >= {TARGET:.0f}x target")


if __name__ == "__main__":
    main()
