"""Benchmark: useful (non-pad) tokens/s of the ILM training step vs the reference's pad-to-256 loop.

Ours: length-grouped batches (HF ``LengthGroupedSampler``, what ``Trainer`` uses with
``group_by_length``), dynamic padding to the longest example of the batch, an attention mask,
and the per-type ILM loss. Reference-style: every example padded to 256, no attention mask,
random batches. Same model size (the ILM default: 2-layer d=64 GPT-2, 2048 BPE), same examples
(learner-style documents of every CEFR level with random word/n-gram masks, kept to <= 256
tokens so both sides see identical examples), same optimiser. Only non-pad tokens count.

    python bench/bench_ilm_training.py [--quick]

Prints the median tokens/s of several repeats for both sides and the ratio (target >= 2x).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers.trainer_pt_utils import LengthGroupedSampler  # noqa: E402

from lmlab.ilm.corpus import generate_learner_corpus  # noqa: E402
from lmlab.ilm.format import ILM_SPECIAL_TOKENS, MaskType  # noqa: E402
from lmlab.ilm.sequences import IlmCollator, IlmTokens, build_dataset, combine_losses, token_nll  # noqa: E402
from lmlab.modeling import ModelSpec, build_model  # noqa: E402
from lmlab.tokenization import prepare_tokenizer  # noqa: E402

REFERENCE_LENGTH = 256


def _random_masks(doc: str, rng: random.Random, n: int) -> list[list[tuple[int, int, int]]]:
    words = list(re.finditer(r"\S+", doc))
    examples = []
    for _ in range(n):
        spans, i = [], 0
        while i < len(words):
            if rng.random() < 0.05:
                k = rng.randint(1, min(4, len(words) - i))
                start, end = words[i].start(), words[i + k - 1].end()
                spans.append((int(MaskType.NGRAM if k > 1 else MaskType.WORD), start, end - start))
                i += k
            i += 1
        examples.append(spans)
    return examples


def _step(model, optimizer, batch, use_mask: bool) -> int:
    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"] if use_mask else None)
    loss = combine_losses(*token_nll(outputs.logits, batch["input_ids"], batch["target_types"]), True,
                          "sum_of_means")
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return int(batch["attention_mask"].sum())


def _measure(model, dataset, batches, collate, use_mask: bool) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    _step(model, optimizer, collate([dataset[i] for i in batches[0]]), use_mask)  # warm-up
    tokens, elapsed = 0, 0.0
    for indices in batches[1:]:
        batch = collate([dataset[i] for i in indices])
        start = time.perf_counter()
        tokens += _step(model, optimizer, batch, use_mask)
        elapsed += time.perf_counter() - start
    return tokens / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    steps, repeats = (8, 3) if args.quick else (20, 5)

    corpus = generate_learner_corpus(1500, seed=0)
    tokenizer = prepare_tokenizer("tiny-gpt2", corpus["text"].tolist(), 2048, ILM_SPECIAL_TOKENS)
    tokens = IlmTokens.from_tokenizer(tokenizer)
    rng = random.Random(0)
    masked = [(doc, _random_masks(doc, rng, 2)) for doc in corpus["text"]]
    dataset = build_dataset(masked, tokenizer, tokens, max_length=10_000, desc="encode bench examples")
    dataset = dataset.filter(lambda row: row["length"] <= REFERENCE_LENGTH)
    lengths = dataset["length"]
    spec = ModelSpec("tiny-gpt2", n_layer=2, d_model=64, n_head=2, d_ff=256, max_positions=REFERENCE_LENGTH)
    print(f"{len(dataset)} examples <= {REFERENCE_LENGTH} tokens, mean length {statistics.mean(lengths):.1f}; "
          f"batch {args.batch_size}, {steps} timed steps x {repeats} repeats; torch threads {torch.get_num_threads()}")

    ours, reference = [], []
    for repeat in range(repeats):
        generator = torch.Generator().manual_seed(repeat)
        grouped = list(LengthGroupedSampler(args.batch_size, lengths=lengths, generator=generator))
        ours_batches = [grouped[i : i + args.batch_size] for i in range(0, len(grouped), args.batch_size)]
        order = torch.randperm(len(dataset), generator=generator).tolist()
        ref_batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        model = build_model(spec, tokenizer, seed=repeat)
        ours.append(_measure(model, dataset, ours_batches[: steps + 1], IlmCollator(tokenizer.pad_token_id), True))
        model = build_model(spec, tokenizer, seed=repeat)
        reference.append(_measure(model, dataset, ref_batches[: steps + 1],
                                  IlmCollator(tokenizer.pad_token_id, pad_to=REFERENCE_LENGTH), False))
        print(f"repeat {repeat}: ours {ours[-1]:,.0f} tok/s   pad-to-256 no mask {reference[-1]:,.0f} tok/s   "
              f"ratio {ours[-1] / reference[-1]:.2f}x")
    ratio = statistics.median(ours) / statistics.median(reference)
    per_repeat = statistics.median(o / r for o, r in zip(ours, reference))
    print(f"median useful tokens/s: ours {statistics.median(ours):,.0f} | pad-to-256 no mask "
          f"{statistics.median(reference):,.0f} | ratio {ratio:.2f}x (median of per-repeat ratios {per_repeat:.2f}x; "
          f"target >= 2x: {'met' if ratio >= 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
