"""Masking whole ILM split files: streamed in, spread over processes, streamed out as pickles.

:func:`mask_level` masks one level's ``{train,valid,test}.txt`` (the ILM custom format:
documents separated by exactly three newlines, one paragraph per line) into
``{train,valid,test}.pkl`` with :mod:`lmlab.ilm.masking`. :func:`mask_split` reads documents
block by block (:func:`iter_documents`), sends chunks of ``chunk_documents`` documents to a
process pool with at most 4 chunks per worker in flight, and appends each chunk's pickled
items to the output as soon as it is its turn (:class:`lmlab.ilm.pickles.ExamplePickleWriter`),
so memory stays bounded on a 578k-document split. Every document has its own seeded RNG,
so the bytes written do not depend on the number of workers or the chunk size.
"""

from __future__ import annotations

import collections
import csv
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmlab.errors import InputError
from lmlab.ilm.masking import MaskParams, MaskStats, mask_documents
from lmlab.ilm.pickles import ExamplePickleWriter, encode_items
from lmlab.ilm.segmentation import Segmenter
from lmlab.progress import progress

logger = logging.getLogger(__name__)

__all__ = ["SPLITS", "iter_documents", "resolve_workers", "mask_split", "count_meta_rows", "mask_level"]


def iter_documents(path: str | Path, encoding: str = "utf-8", block: int = 1 << 20) -> Iterator[str]:
    """Documents of an ILM custom-format file, streamed block by block.

    The reference's ``f.read().strip().split('\\n\\n\\n')`` then ``strip()`` (universal
    newlines, empty entries kept), except that a whitespace-only file has no document
    instead of one empty one.
    """
    buffer = ""
    blanks = 0  # empty entries, yielded only if a document follows (the file is stripped)
    started = False
    with open(path, encoding=encoding) as handle:
        while True:
            try:
                chunk = handle.read(block)
            except UnicodeDecodeError as exc:
                from lmlab.ilm.splitting import check_encoding

                hint = "write the splits with `dvc repro ilm_split`."
                try:
                    check_encoding(path, encoding)  # finds the bad byte's line and column
                except InputError as bad:
                    raise InputError(bad.what, path=path, line=bad.line, column=bad.column, hint=hint) from exc
                raise InputError(f"not valid {encoding} text ({exc.reason}).", path=path, hint=hint) from exc
            eof = not chunk
            if not started:
                chunk = chunk.lstrip()
                started = bool(chunk)
            pieces = (buffer + chunk).split("\n\n\n")
            buffer = "" if eof else pieces.pop()
            for piece in pieces:
                doc = piece.strip()
                if not doc:
                    blanks += 1
                    continue
                for _ in range(blanks):
                    yield ""
                blanks = 0
                yield doc
            if eof:
                return


_WORKER: dict[str, Any] = {}
_SEGMENTERS: dict[str | None, Segmenter] = {}  # built before forking, inherited by fork workers


def _segmenter(nltk_data: str | None) -> Segmenter:
    if nltk_data not in _SEGMENTERS:
        if nltk_data is not None:
            from lmlab.ilm.punkt import use_nltk_data

            use_nltk_data(Path(nltk_data))
        _SEGMENTERS[nltk_data] = Segmenter()
    return _SEGMENTERS[nltk_data]


def _init_worker(nltk_data: str | None, params: MaskParams, seed: int, stream: str, n_examples: int) -> None:
    _WORKER.update(segmenter=_segmenter(nltk_data), params=params, seed=seed, stream=stream, n_examples=n_examples)


def _mask_chunk(task: tuple[int, list[str]]) -> tuple[bytes, int, MaskStats]:
    first_index, docs = task
    items, stats = mask_documents(docs, first_index, _WORKER["segmenter"], _WORKER["params"], _WORKER["seed"],
                                  _WORKER["stream"], _WORKER["n_examples"])
    return encode_items(items), len(items), stats


def _chunks(docs: Iterator[str], size: int) -> Iterator[tuple[int, list[str]]]:
    batch: list[str] = []
    start = 0
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size:
            yield start, batch
            start += len(batch)
            batch = []
    if batch:
        yield start, batch


def resolve_workers(workers: int) -> int:
    """``workers`` or, for 0, the CPUs this process may use."""
    if workers > 0:
        return workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def mask_split(
    in_path: str | Path, out_path: str | Path, params: MaskParams, stream: str, n_examples: int,
    nltk_data: str | Path | None = None, encoding: str = "utf-8", total: int | None = None,
) -> MaskStats:
    """Mask every document of ``in_path`` into the pickle ``out_path`` (written in place).

    Chunks of ``params.chunk_documents`` documents go to ``params.workers`` processes (0 =
    all CPUs); at most 4 chunks per worker are in flight and results are written in input
    order as they arrive. A single chunk or a single worker: no pool. ``nltk_data`` is the
    punkt directory the workers point NLTK at (``None``: NLTK's current search path). ``total``
    (the document count, if known) only gives the progress report its percentage and ETA.
    """
    workers = resolve_workers(params.workers)
    init_args = (None if nltk_data is None else str(nltk_data), params, params.seed, stream, n_examples)
    stats = MaskStats()
    chunks = _chunks(iter_documents(in_path, encoding), params.chunk_documents)
    head = [task for task in (next(chunks, None), next(chunks, None)) if task is not None]
    bar = progress(desc=f"mask {stream}", unit="docs", total=total)
    with open(out_path, "wb") as handle:
        writer = ExamplePickleWriter(handle)

        def consume(result: tuple[bytes, int, MaskStats]) -> None:
            body, n_items, chunk_stats = result
            writer.write_encoded(body, n_items)
            stats.merge(chunk_stats)
            bar.update(n_items)

        if len(head) < 2 or workers == 1:
            _init_worker(*init_args)
            for task in _chain(iter(head), chunks):
                consume(_mask_chunk(task))
        else:
            _segmenter(init_args[0])  # load punkt once; fork-started workers inherit it
            with multiprocessing.get_context().Pool(workers, _init_worker, init_args) as pool:
                pending: collections.deque = collections.deque()
                for task in _chain(iter(head), chunks):
                    pending.append(pool.apply_async(_mask_chunk, (task,)))
                    if len(pending) >= 4 * workers:
                        consume(pending.popleft().get())
                while pending:
                    consume(pending.popleft().get())
        writer.close()
    bar.close()
    return stats


def count_meta_rows(path: str | Path, encoding: str = "utf-8") -> int:
    """Data rows of a split's ``.meta.csv`` (quoted multi-line texts count once)."""
    with open(path, encoding=encoding, newline="") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


SPLITS = ("train", "valid", "test")


def mask_level(
    splits_dir: str | Path, out_dir: str | Path, params: MaskParams, nltk_data: str | Path | None = None
) -> dict[str, Any]:
    """Mask ``<splits_dir>/{train,valid,test}.txt`` into ``<out_dir>/<split>.pkl``; return the stats.

    Each ``.txt`` must hold as many documents as its ``.meta.csv`` has rows (same order), so
    pickle items line up with the metadata (CEFR level, L1) by position.
    """
    splits_dir, out_dir = Path(splits_dir), Path(out_dir)
    report: dict[str, Any] = {}
    for split in SPLITS:
        txt, meta = splits_dir / f"{split}.txt", splits_dir / f"{split}.meta.csv"
        for path in (txt, meta):
            if not path.is_file():
                raise InputError("split file not found.", path=path, hint="run `dvc repro ilm_split` first.")
        n_examples = getattr(params.examples_per_document, split)
        rows = count_meta_rows(meta)
        start = time.perf_counter()
        stats = mask_split(txt, out_dir / f"{split}.pkl", params, split, n_examples, nltk_data, total=rows)
        seconds = time.perf_counter() - start
        if rows != stats.documents:
            raise InputError(
                f"{txt.name} holds {stats.documents} documents but {meta.name} has {rows} rows.",
                path=txt, hint="documents must be separated by exactly three newlines, one per meta row; "
                "re-run `dvc repro ilm_split`.",
            )
        summary = stats.summary()
        logger.info(
            "%s: %d documents (%d skipped) in %.1f s (%.0f docs/s, %d workers), %d examples, mask rate %.4f, spans %s",
            split, stats.documents, stats.skipped_documents, seconds, stats.documents / max(seconds, 1e-9),
            resolve_workers(params.workers), stats.examples, summary["mask_rate_chars"],
            {k: round(v, 4) for k, v in summary["span_type_share"].items()},
        )
        report[split] = summary
    return report


def _chain(*iterators: Iterator[Any]) -> Iterator[Any]:
    for iterator in iterators:
        yield from iterator
