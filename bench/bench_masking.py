"""Benchmark: ILM hierarchical masking, the reference loop vs lmlab.ilm.masking (target: >= 10x docs/s).

    python bench/bench_masking.py [--quick] [--docs 5000] [--repeats 3] [--scale-docs 578000]

Side by side on the same learner-style corpus (lmlab.ilm.corpus, written as an ILM
split file):

(a) a faithful single-process reimplementation of the reference's create_ilm_examples.py:
    `nltk.sent_tokenize` + `nltk.word_tokenize` per sentence with the reference's
    lru_cache(128) segmentation, its `MaskHierarchical.mask()` with one global RNG, 16
    examples per document with up to 16 draws each and the uniqueness check, then
    `pickle.dump` of the whole list;
(b) `lmlab.ilm.masked_splits.mask_split` on all cores (fast exact segmentation, geometric-gap
    sampling, per-document RNGs, streamed pickle).

Prints docs/s of both (median of the repeats), the ratio against the 10x target and
against the reference's published ~300 docs/s, both sides' char mask rate and span-type
mix (they must agree within 1 point), whether the fast segmentation is identical to NLTK's
on the corpus, and peak RSS. `--scale-docs N` also masks an N-document split (the corpus
repeated) with (b) only and prints its docs/s and peak RSS (memory stays bounded).
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lmlab.ilm.corpus import generate_learner_corpus  # noqa: E402
from lmlab.ilm.masked_splits import iter_documents, mask_split, resolve_workers  # noqa: E402
from lmlab.ilm.masking import MaskParams, MaskStats, reference_mask  # noqa: E402
from lmlab.ilm.punkt import use_nltk_data, write_punkt_tab  # noqa: E402
from lmlab.ilm.segmentation import Segmenter, reference_hierarchical_offsets  # noqa: E402

TARGET_RATIO = 10.0
PUBLISHED_REFERENCE_DOCS_S = 300.0
TYPES = ("document", "paragraph", "sentence", "ngram", "word")


def reference_run(split: Path, out: Path, params: MaskParams, seed: int) -> MaskStats:
    """create_ilm_examples.py's loop (reference segmentation and mask(), global RNG, unique, retries)."""
    reference_hierarchical_offsets.cache_clear()
    rng = random.Random(seed)
    with open(split) as handle:
        docs = [e.strip() for e in handle.read().strip().split("\n\n\n")]
    stats = MaskStats()
    masked = []
    for doc in docs:
        stats.documents += 1
        examples: list[list] = []
        seen: set = set()
        for _ in range(params.examples_per_document.train):
            for _attempt in range(params.max_retries):
                try:
                    spans = tuple(reference_mask(reference_hierarchical_offsets(doc), rng, params))
                except ValueError:
                    continue
                if spans and spans[0][2] <= 0:
                    stats.retries["invalid_bounds"] += 1
                    continue
                if spans in seen:
                    stats.retries["not_unique"] += 1
                    continue
                seen.add(spans)
                examples.append(list(spans))
                stats.add_example(len(doc), spans)
                break
        masked.append((doc, examples))
    with open(out, "wb") as handle:
        pickle.dump(masked, handle)
    return stats


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(fn, repeats: int) -> tuple[float, float, MaskStats]:
    """Median wall seconds, median CPU seconds (this process + its finished workers), last stats."""
    times, cpus, stats = [], [], None
    for _ in range(repeats):
        start, cpu = time.perf_counter(), _cpu_seconds()
        stats = fn()
        times.append(time.perf_counter() - start)
        cpus.append(_cpu_seconds() - cpu)
    return statistics.median(times), statistics.median(cpus), stats


def _mix(stats: MaskStats) -> str:
    s = stats.summary()
    mix = " ".join(f"{t} {100 * s['span_type_share'][t]:5.2f}%" for t in TYPES)
    return (f"mask rate {100 * s['mask_rate_chars']:5.2f}% | {mix} | spans/ex {s['spans_per_example']:.2f} | "
            f"empty {100 * s['empty_example_rate']:.2f}% | retries {sum(s['retries'].values())} | "
            f"skipped docs {s['skipped_documents']}")


def _peak_rss_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 documents, one repeat")
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="lmlab side processes (0 = all CPUs)")
    parser.add_argument("--scale-docs", type=int, default=0, help="also mask an N-document split (lmlab only)")
    parser.add_argument("--spec-shape", action="store_true",
                        help="keep documents of 125-664 chars, like the reference study's corpus (mean 328)")
    args = parser.parse_args()
    n_docs, repeats = (1000, 1) if args.quick else (args.docs, args.repeats)
    params = MaskParams(workers=args.workers, seed=0)
    workers = resolve_workers(args.workers)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        write_punkt_tab(tmp / "nltk_data")
        use_nltk_data(tmp / "nltk_data")
        pool = [str(t).strip() for t in generate_learner_corpus(max(n_docs, 10) * (3 if args.spec_shape else 1),
                                                                 seed=0).text]
        docs = [d for d in pool if 125 <= len(d) <= 664 or not args.spec_shape][:n_docs]
        split = tmp / "train.txt"
        split.write_text("\n\n\n".join(docs), encoding="utf-8")
        segmenter = Segmenter()
        n_sent = sum(len(segmenter.segment(d).sentences) for d in docs[:1000]) / min(len(docs), 1000)
        n_par = sum(len([p for p in d.splitlines() if p.strip()]) for d in docs) / len(docs)
        print(f"corpus: {len(docs)} learner-style documents (lmlab.ilm.corpus), mean "
              f"{sum(map(len, docs)) / len(docs):.0f} chars, {n_par:.2f} paragraphs, {n_sent:.1f} sentences; "
              f"{os.cpu_count()} CPUs, lmlab side uses {workers} processes; median of {repeats} run(s)")

        same = sum(_tree(segmenter.segment(d)) == reference_hierarchical_offsets(d) for d in docs[:500])
        print(f"fast segmentation identical to NLTK's on {same}/{min(len(docs), 500)} documents")

        load = os.getloadavg()[0]
        t_ref, cpu_ref, ref = _timed(lambda: reference_run(split, tmp / "ref.pkl", params, 0), repeats)
        t_ours, cpu_ours, ours = _timed(
            lambda: mask_split(split, tmp / "ours.pkl", params, "train", 16, nltk_data=tmp / "nltk_data"), repeats
        )
        ref_rate, our_rate = len(docs) / t_ref, len(docs) / t_ours
        ratio = our_rate / ref_rate
        print(f"(a) reference loop, 1 process : {t_ref:7.2f} s wall {ref_rate:7.0f} docs/s | "
              f"{cpu_ref:6.2f} CPU-s {len(docs) / cpu_ref:7.0f} docs/CPU-s")
        print(f"(b) lmlab.ilm.masking, {workers} proc(s)  : {t_ours:7.2f} s wall {our_rate:7.0f} docs/s | "
              f"{cpu_ours:6.2f} CPU-s {len(docs) / cpu_ours:7.0f} docs/CPU-s")
        print(f"load average before the runs: {load:.1f} on {os.cpu_count()} CPUs (other jobs share them: "
              f"wall figures are noisy, docs/CPU-s is the steadier per-core figure; per-core ratio "
              f"{cpu_ref / cpu_ours:.1f}x, x{workers} processes = {workers * cpu_ref / cpu_ours:.1f}x if the cores are free)")
        verdict = "MEETS" if ratio >= TARGET_RATIO else "BELOW"
        print(f"ratio (b)/(a): {ratio:.1f}x -> {verdict} the {TARGET_RATIO:.0f}x target; "
              f"vs the published ~{PUBLISHED_REFERENCE_DOCS_S:.0f} docs/s: {our_rate / PUBLISHED_REFERENCE_DOCS_S:.1f}x")
        print(f"(a) {_mix(ref)}")
        print(f"(b) {_mix(ours)}")
        a, b = ref.summary(), ours.summary()
        worst = max([abs(a["mask_rate_chars"] - b["mask_rate_chars"])]
                    + [abs(a["span_type_share"][t] - b["span_type_share"][t]) for t in TYPES])
        print(f"largest statistics gap: {100 * worst:.2f} points ({'within' if worst <= 0.01 else 'OUTSIDE'} 1 point)")
        print(f"pickle sizes: reference {os.path.getsize(tmp / 'ref.pkl'):,} B, lmlab {os.path.getsize(tmp / 'ours.pkl'):,} B")
        own, children = _peak_rss_mib()
        print(f"peak RSS: this process {own:.0f} MiB, largest worker {children:.0f} MiB")

        if args.scale_docs:
            big = tmp / "big.txt"
            with open(big, "w", encoding="utf-8") as handle:
                for i in range(args.scale_docs):
                    handle.write(("\n\n\n" if i else "") + docs[i % len(docs)])
            start = time.perf_counter()
            stats = mask_split(big, tmp / "big.pkl", params, "train", 16, nltk_data=tmp / "nltk_data")
            took = time.perf_counter() - start
            own, children = _peak_rss_mib()
            n_in = sum(1 for _ in iter_documents(big))
            print(f"scale: {stats.documents:,} documents ({n_in:,} in the file) in {took:.1f} s = "
                  f"{stats.documents / took:.0f} docs/s, pickle {os.path.getsize(tmp / 'big.pkl') / 2**20:.0f} MiB, "
                  f"peak RSS this process {own:.0f} MiB, largest worker {children:.0f} MiB")


def _tree(segments) -> tuple:
    paragraphs = []
    for p_off, p_len, s_lo, s_hi in segments.paragraphs:
        sentences = [
            (s_off, s_len, tuple((segments.word_offsets[k], segments.word_ends[k] - segments.word_offsets[k])
                                 for k in range(w_lo, w_hi)))
            for s_off, s_len, w_lo, w_hi in segments.sentences[s_lo:s_hi]
        ]
        paragraphs.append((p_off, p_len, tuple(sentences)))
    return (0, segments.length, tuple(paragraphs))


if __name__ == "__main__":
    main()
