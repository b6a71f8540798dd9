"""Benchmark: batched KV-cached ILM infilling vs the reference's per-sample, no-cache loop (target >= 20x).

Both sides decode the same prompts greedily with the same model, so their outputs are
checked to be identical token for token. The reference side (``ilm/infer.py`` style) runs
one sample at a time and a full forward pass over the whole sequence for every new token;
the batched side is :func:`lmlab.ilm.infill.generate_infills` (length-sorted left-padded
batches, one prompt pass, then one token per step with ``past_key_values``).

Model: a GPT-2 built from config (default 4 layers, d=256, 4 heads) with a 2048-token BPE
trained on the embedded learner corpus; prompts: learner texts of 70-200 tokens with 1-3
masked words (the ILM context + ``<|startofinfill|>``). A randomly initialised model rarely
emits ``<|endofinfill|>``, so rows usually run to ``--max-new-tokens`` on both sides.

    python bench/bench_infill_generation.py [--quick] [--samples 32] [--max-new-tokens 32] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from lmlab.ilm.format import ILM_SPECIAL_TOKENS, mask_document  # noqa: E402
from lmlab.ilm.infill import generate_infills, generate_reference  # noqa: E402
from lmlab.ilm.infill_eval import mask_text  # noqa: E402
from lmlab.ilm.corpus import generate_learner_corpus  # noqa: E402
from lmlab.modeling import ModelSpec, build_model, count_parameters  # noqa: E402
from lmlab.tokenization import add_special_tokens, train_bpe_tokenizer  # noqa: E402

TARGET = 20.0


def build(args: argparse.Namespace):
    corpus = generate_learner_corpus(n_documents=800, seed=0)
    texts = corpus["text"].tolist()
    tokenizer = train_bpe_tokenizer(texts, vocab_size=2048)
    special = add_special_tokens(tokenizer, ILM_SPECIAL_TOKENS)
    start, end = special[0], special[1]
    spec = ModelSpec("tiny-gpt2", n_layer=args.layers, d_model=args.d_model, n_head=4, d_ff=4 * args.d_model,
                     max_positions=512)
    model = build_model(spec, tokenizer, seed=0).eval()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 samples, 1 repeat, 8 new tokens")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, same for both sides (0 = default)")
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
          f"k masks {min(ks)}-{max(ks)}, max_new_tokens {args.max_new_tokens}, greedy on both sides")
    limit = model.config.n_positions
    ratios, cpu_ratios, ref_rates, bat_rates = [], [], [], []
    for repeat in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        reference = [generate_reference(model, p, k, end, args.max_new_tokens, limit) for p, k in zip(prompts, ks)]
        t_ref, c_ref = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        batched = generate_infills(model, prompts, ks, end, tokenizer.pad_token_id, args.max_new_tokens, limit,
                                   batch_size=args.batch_size)
        t_bat, c_bat = time.perf_counter() - t0, time.process_time() - c0
        if batched != reference:
            raise SystemExit("MISMATCH: batched and reference generations differ")
        ref_rates.append(len(prompts) / t_ref)
        bat_rates.append(len(prompts) / t_bat)
        ratios.append(t_ref / t_bat)
        cpu_ratios.append(c_ref / c_bat)
        tokens = sum(len(g) for g in batched)
        print(f"repeat {repeat + 1}: reference {t_ref:7.2f} s ({ref_rates[-1]:6.2f} samples/s) | "
              f"batched+KV cache {t_bat:6.2f} s ({bat_rates[-1]:7.2f} samples/s) | ratio {ratios[-1]:6.1f}x "
              f"(CPU time {c_ref:.1f} s vs {c_bat:.1f} s: {cpu_ratios[-1]:.1f}x) | {tokens} generated tokens, "
              "outputs identical")
    median = statistics.median(ratios)
    verdict = "MEETS" if median >= TARGET else "BELOW"
    print(f"median: reference {statistics.median(ref_rates):.2f} samples/s, batched {statistics.median(bat_rates):.2f} "
          f"samples/s, speed-up {median:.1f}x wall-clock ({verdict} the >= {TARGET:.0f}x target); "
          f"CPU-time speed-up {statistics.median(cpu_ratios):.1f}x")


if __name__ == "__main__":
    main()
