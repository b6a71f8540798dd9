"""CEFR-level train/valid/test splits of a learner corpus CSV, in the ILM custom format.

Input: an EFCAMDAT-style CSV (column names are parameters). Output, in one directory::

    <LEVEL>/{train,valid,test}.txt        LEVEL in A1 A2 B1 B2 C1 all
    <LEVEL>/{train,valid,test}.meta.csv   columns id,cefr,l1,text, same document order (text quoted)

A ``.txt`` file holds the documents separated by exactly ``\\n\\n\\n`` (no trailing newline),
one paragraph per line; this is what the reference ILM code reads with
``f.read().strip().split('\\n\\n\\n')`` and ``str.splitlines()``.

Cleaning (learner errors are never touched: only whitespace between paragraphs changes):

* a text becomes its non-empty, stripped lines (``str.splitlines``, so ``\\r\\n`` and the
  other Unicode line breaks count) joined by ``\\n``: a document never contains a blank line,
  so it can never contain the ``\\n\\n\\n`` separator;
* CEFR labels are stripped and upper-cased (``" b1 "`` -> ``B1``); anything outside A1..C1
  (``B3``, ``C2``) or empty is dropped and counted, or rejected with its file line number
  when ``strict_labels`` is set;
* empty / whitespace-only texts are dropped and counted;
* duplicate texts (after normalisation) are dropped and counted, keeping the first: the
  same text in train and test would leak;
* an empty L1 becomes ``unknown``; a missing id column gives ids = data row numbers.

Splits are 80/10/10 per level, stratified by L1 with a seeded random order: each level's
test/valid counts are rounded from the fractions (at least one document each when the level
has three or more) and allocated over the L1 groups by largest remainder. ``all`` is the
union of the level splits (a document is in ``all/test`` iff it is in its level's test), so
the general model never trains on a specialised model's test documents. ``sample_size``
first draws a subsample stratified by level x L1 (every level keeps at least 3 documents).

Everything is vectorised pandas/numpy and files are streamed, so the real corpus' 723k rows
split in seconds (see ``bench/bench_split.py``).
"""

from __future__ import annotations

import codecs
import csv
import itertools
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmlab.errors import InputError
from lmlab.ilm.params import LEVELS, SplitParams  # moved there (no pandas) for the params check; re-exported

__all__ = ["LEVELS", "SPLITS", "SplitParams", "check_encoding", "normalise_label", "normalise_text",
           "load_corpus", "assign_splits", "write_splits", "split_corpus"]

logger = logging.getLogger(__name__)

ALL = "all"
SPLITS: tuple[str, ...] = ("train", "valid", "test")
SEPARATOR = "\n\n\n"
META_COLUMNS = ["id", "cefr", "l1", "text"]
_CHUNK = 1 << 24


def check_encoding(path: str | Path, encoding: str = "utf-8") -> None:
    """Decode the file in 16 MB chunks (bounded memory); the first bad byte is reported by offset, line, column."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found.", path=path, hint="check the ilm.data.csv parameter.")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    consumed = 0  # bytes fed to the decoder before this chunk
    with path.open("rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                offset = consumed - len(pending) + exc.start
                bad = (pending + chunk)[exc.start]
                line, column = _line_column(path, offset)
                raise InputError(
                    f"not valid {encoding}: byte 0x{bad:02x} at byte offset {offset} ({exc.reason}).",
                    path=path, line=line, column=column,
                    hint="re-encode the file as UTF-8, or set ilm.data.encoding (e.g. latin-1).",
                ) from exc
            if not chunk:
                return
            consumed += len(chunk)


def _line_column(path: Path, offset: int) -> tuple[int, int]:
    """1-based line and byte column of a byte offset (only computed on the error path)."""
    line, last_nl, done = 1, -1, 0
    with path.open("rb") as f:
        while done < offset:
            chunk = f.read(min(_CHUNK, offset - done))
            line += chunk.count(b"\n")
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                last_nl = done + nl
            done += len(chunk)
    return line, offset - last_nl


def normalise_label(values: pd.Series) -> pd.Series:
    """Strip and upper-case CEFR labels (`` b1 `` -> ``B1``); the caller drops anything outside A1..C1."""
    return values.astype(str).str.strip().str.upper()


def normalise_text(text: str) -> str:
    """Paragraphs = non-empty stripped lines, joined by ``\\n`` (the words are never changed)."""
    lines = text.splitlines()
    if len(lines) == 1:
        return lines[0].strip()
    return "\n".join(filter(None, [line.strip() for line in lines]))


def _record_lines(path: Path, encoding: str, rows: set[int]) -> dict[int, int]:
    """File line (1-based) where each listed data row starts, following quoted multi-line fields."""
    found: dict[int, int] = {}
    with path.open(encoding=encoding, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        previous, row = reader.line_num, 0
        for record in reader:
            if record:  # pandas skips blank lines too
                if row in rows:
                    found[row] = previous + 1
                    if len(found) == len(rows):
                        break
                row += 1
            previous = reader.line_num
    return found


def _read_csv(path: Path, enc: str, encoding: str, nrows: int | None = None) -> pd.DataFrame:
    """``pd.read_csv`` of every column as plain strings, its errors turned into :class:`InputError`.

    All columns are read: with ``usecols`` the C parser silently accepts rows with too many fields.
    """
    try:
        return pd.read_csv(path, encoding=enc, dtype=object, keep_default_na=False, na_filter=False, nrows=nrows)
    except pd.errors.EmptyDataError as exc:
        raise InputError("the file is empty.", path=path, hint="point ilm.data.csv at a CSV with a header row.") from exc
    except UnicodeDecodeError:
        check_encoding(path, encoding)  # raises, naming the byte offset
        raise
    except (pd.errors.ParserError, ValueError) as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(f"not a valid CSV file: {str(exc).strip()}".rstrip(".") + ".", path=path,
                         line=int(m.group(1)) if m else None,
                         hint="quote fields that contain commas, quotes or newlines.") from exc


def _read_columns_fast(path: Path, encoding: str, cols: list[str]) -> pd.DataFrame | None:
    """Read ``cols`` with pyarrow's multi-threaded CSV reader (about 2x pandas' C parser), or None.

    Same results as :func:`_read_csv` on a well-formed UTF-8 file (quoted multi-line fields, BOM,
    blank lines, empty fields as ``""``); anything it rejects returns None so that the pandas
    path reports the problem with its line number.
    """
    if codecs.lookup(encoding).name != "utf-8":
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - pyarrow comes with pandas/datasets
        return None
    try:
        table = pacsv.read_csv(
            path, read_options=pacsv.ReadOptions(block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                include_columns=cols, column_types=dict.fromkeys(cols, pa.string()),
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowException, ValueError) as exc:
        logger.debug("pyarrow could not read %s (%s); using pandas", path, exc)
        return None
    columns = {}
    for name in cols:  # one column at a time, so Arrow and Python copies never all coexist
        columns[name] = table.column(name).to_numpy(zero_copy_only=False)
        table = table.drop_columns([name])
    return pd.DataFrame(columns, dtype=object)


def load_corpus(params: SplitParams) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read, validate and clean the CSV: a frame with id, cefr, l1, text and the dropped counts."""
    path = Path(params.csv)
    if not path.is_file():
        raise InputError("file not found.", path=path, hint="check the ilm.data.csv parameter.")
    with path.open("rb") as f:
        head = f.read(65536)
    if not head.strip():
        raise InputError("the file is empty.", path=path, hint="point ilm.data.csv at a CSV with a header row.")
    enc = "utf-8-sig" if codecs.lookup(params.encoding).name == "utf-8" else params.encoding
    header = list(_read_csv(path, enc, params.encoding, nrows=0).columns)
    required = {"text_col": params.text_col, "cefr_col": params.cefr_col, "l1_col": params.l1_col}
    missing = [f"'{col}' (ilm.data.{key})" for key, col in required.items() if col not in header]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)}; the header has {header}.",
                         path=path, line=1, hint="rename the columns or set ilm.data.text_col/cefr_col/l1_col.")
    has_id = params.id_col in header
    cols = [*required.values(), *([params.id_col] if has_id else [])]
    raw = _read_columns_fast(path, params.encoding, cols)
    if raw is None:  # not UTF-8, pyarrow missing, or a malformed file: pandas, which also explains errors
        raw = _read_csv(path, enc, params.encoding)[cols]
    if raw.empty:
        raise InputError("the file has a header but no data rows.", path=path, line=2)
    raw = raw.fillna("")
    n_rows = len(raw)
    ids = raw[params.id_col].str.strip() if has_id else pd.Series(np.arange(1, n_rows + 1).astype(str))
    frame = pd.DataFrame({"id": ids.to_numpy(), "cefr": normalise_label(raw[params.cefr_col]).to_numpy(),
                          "l1": raw[params.l1_col].str.strip().replace("", "unknown").to_numpy(),
                          "text": raw[params.text_col].to_numpy()}, dtype=object)
    del raw
    empty_label = frame["cefr"].eq("")
    unknown_label = ~frame["cefr"].isin(LEVELS) & ~empty_label
    bad = empty_label | unknown_label
    if params.strict_labels and bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        line = _record_lines(path, enc, {first}).get(first)
        raise InputError(
            f"invalid CEFR label {frame['cefr'].iat[first]!r} in column '{params.cefr_col}' (valid: "
            f"{', '.join(LEVELS)}, any case and surrounding spaces); {int(bad.sum())} row(s) have an empty or "
            "unknown label.", path=path, line=line,
            hint="fix the labels, or set ilm.data.strict_labels: false to drop and count such rows.")
    frame = frame[~bad]
    # One Python pass is faster than any vectorised pre-check; object dtype avoids Arrow round trips.
    frame["text"] = pd.Series([normalise_text(t) for t in frame["text"].tolist()], index=frame.index, dtype=object)
    empty_text = frame["text"].eq("")
    frame = frame[~empty_text]
    duplicate = frame["text"].duplicated(keep="first")
    frame = frame[~duplicate].reset_index(drop=True)
    dropped = {"empty_label": int(empty_label.sum()), "unknown_label": int(unknown_label.sum()),
               "empty_text": int(empty_text.sum()), "duplicate_text": int(duplicate.sum())}
    logger.info("read %d rows from %s: kept %d, dropped %s", n_rows, path, len(frame), dropped)
    if frame.empty:
        raise InputError(f"no usable documents left after cleaning (dropped: {dropped}).", path=path,
                         hint="check the label and text columns.")
    return frame, {"n_rows": n_rows, **dropped}


def _allocate(sizes: np.ndarray, total: int) -> np.ndarray:
    """Integer counts <= sizes summing to ``total``, proportional to ``sizes`` (largest remainder)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if total <= 0 or sizes.sum() == 0:
        return np.zeros_like(sizes)
    quota = sizes * (total / sizes.sum())
    counts = np.minimum(np.floor(quota).astype(np.int64), sizes)
    order = np.lexsort((np.arange(len(sizes)), -(quota - counts)))
    for i in order:
        if counts.sum() >= total:
            break
        if counts[i] < sizes[i]:
            counts[i] += 1
    return counts


def _held_out(n: int, fraction: float) -> int:
    k = int(np.floor(n * fraction + 0.5))
    return max(k, 1) if n >= 3 and fraction > 0 else k


def _groups(frame: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Group code level * n_l1 + l1 of every document (L1s in sorted order), and n_l1."""
    level = pd.Categorical(frame["cefr"], categories=LEVELS).codes.astype(np.int64)
    l1, names = pd.factorize(frame["l1"], sort=True)
    return level * len(names) + l1, len(names)


def _ranks(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Position of each document in its group, in the seeded random ``key`` order (numpy only)."""
    order = np.lexsort((key, group))
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    lengths = np.diff(np.r_[starts, len(group)])
    ranks = np.empty(len(group), dtype=np.int64)
    ranks[order] = np.arange(len(group)) - np.repeat(starts, lengths)
    return ranks


def assign_splits(frame: pd.DataFrame, params: SplitParams) -> tuple[pd.DataFrame, int]:
    """Add ``split`` and the random order ``_key`` (subsampling first if ``sample_size``); return it, #not sampled.

    Within a (level, L1) group the documents are ranked by ``_key``: the first ones go to test, the
    next to valid, the rest to train; a subsample keeps each group's first ranks, so it is itself a
    random stratified draw and the ranks stay valid for the split that follows.
    """
    frame = frame.copy()
    key = np.random.default_rng(params.seed).random(len(frame))
    group, n_l1 = _groups(frame)
    ranks = _ranks(group, key)
    sizes = np.bincount(group, minlength=len(LEVELS) * n_l1).reshape(len(LEVELS), n_l1)
    not_sampled = 0
    if 0 < params.sample_size < len(frame):
        level_sizes = sizes.sum(axis=1)
        per_level = _allocate(level_sizes, params.sample_size)
        floor = np.minimum(level_sizes, 3)
        while (per_level < floor).any():  # every level keeps a few documents; take them from the largest
            i, j = int(np.argmax(floor - per_level)), int(np.argmax(per_level - floor))
            per_level[i] += 1
            per_level[j] -= 1
        sizes = np.stack([_allocate(sizes[i], int(per_level[i])) for i in range(len(LEVELS))])
        keep = ranks < sizes.ravel()[group]
        not_sampled = int((~keep).sum())
        frame, key, group, ranks = frame[keep].reset_index(drop=True), key[keep], group[keep], ranks[keep]
    n_test = np.zeros_like(sizes)
    n_valid = np.zeros_like(sizes)
    for i in range(len(LEVELS)):
        n = int(sizes[i].sum())
        n_test[i] = _allocate(sizes[i], _held_out(n, params.test_fraction))
        n_valid[i] = _allocate(sizes[i] - n_test[i], _held_out(n, params.valid_fraction))
    t, v = n_test.ravel()[group], n_valid.ravel()[group]
    frame["split"] = np.where(ranks < t, "test", np.where(ranks < t + v, "valid", "train"))
    frame["_key"] = key
    return frame, not_sampled


def _write_txt(path: Path, texts: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        for start in range(0, len(texts), 20000):
            if start:
                f.write(SEPARATOR)
            f.write(SEPARATOR.join(texts[start:start + 20000]))


def _plain_column(values: list[str]) -> list[str]:
    """Short columns (id, label, L1) are written unquoted; a value that would need quotes is quoted."""
    if any(c in v for v in set(values) for c in '",\n\r'):
        return ['"' + v.replace('"', '""') + '"' if any(c in v for c in '",\n\r') else v for v in values]
    return values


def _write_lines(path: Path, header: str, lines: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(header)
        for start in range(0, len(lines), 20000):
            f.write("".join(lines[start:start + 20000]))


def write_splits(frame: pd.DataFrame, out_dir: str | Path) -> dict[str, dict[str, int]]:
    """Write ``<LEVEL>/<split>.txt`` and ``.meta.csv`` for every level and ``all``; return the counts.

    Documents are written in the seeded random ``_key`` order (``all`` interleaves the levels).
    Each document's metadata line is built once and shared by its level's file and ``all``'s.
    """
    out_dir = Path(out_dir)
    order = np.argsort(frame["_key"].to_numpy(), kind="stable")
    texts = frame["text"].to_numpy(dtype=object)[order]
    level_code = pd.Categorical(frame["cefr"], categories=LEVELS).codes[order]
    split_code = pd.Categorical(frame["split"], categories=SPLITS).codes[order]
    ids, cefr, l1 = (_plain_column(frame[c].to_numpy(dtype=object)[order].tolist()) for c in META_COLUMNS[:3])
    # The text is always quoted (any CSV reader accepts it; it nearly always holds a comma anyway).
    lines = np.array([f'{a},{b},{c},"{t.replace(chr(34), chr(34) * 2)}"\n'
                      for a, b, c, t in zip(ids, cefr, l1, texts.tolist())], dtype=object)
    header = ",".join(META_COLUMNS) + "\n"
    counts: dict[str, dict[str, int]] = {}
    for li, level in enumerate((*LEVELS, ALL)):
        level_dir = out_dir / level
        level_dir.mkdir(parents=True, exist_ok=True)
        in_level = np.ones(len(frame), dtype=bool) if level == ALL else level_code == li
        counts[level] = {}
        for si, split in enumerate(SPLITS):
            idx = np.flatnonzero(in_level & (split_code == si))
            _write_txt(level_dir / f"{split}.txt", texts[idx].tolist())
            _write_lines(level_dir / f"{split}.meta.csv", header, lines[idx].tolist())
            counts[level][split] = len(idx)
        counts[level]["total"] = int(in_level.sum())
    return counts


def split_stats(frame: pd.DataFrame, counts: dict[str, dict[str, int]], read: dict[str, int],
                not_sampled: int) -> dict[str, Any]:
    """The metrics JSON: counts per level x split, L1 mix, text lengths, dropped rows by reason.

    Words are counted as space- or newline-separated tokens (the text is normalised).
    """
    texts = frame["text"].tolist()
    chars = pd.Series(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), index=frame.index)
    spaces = np.fromiter(map(str.count, texts, itertools.repeat(" ")), dtype=np.int64, count=len(texts))
    breaks = np.fromiter(map(str.count, texts, itertools.repeat("\n")), dtype=np.int64, count=len(texts))
    words = pd.Series(spaces + breaks + 1, index=frame.index)
    length: dict[str, dict[str, float]] = {}
    for level in (*LEVELS, ALL):
        mask = slice(None) if level == ALL else (frame["cefr"] == level)
        c, w = chars[mask], words[mask]
        length[level] = ({"chars_mean": round(float(c.mean()), 2), "chars_min": int(c.min()),
                          "chars_max": int(c.max()), "words_mean": round(float(w.mean()), 2)} if len(c) else {})
    mix = frame["l1"].value_counts(normalize=True)
    return {
        "n_rows": read["n_rows"],
        "n_documents": len(frame),
        "dropped": {k: v for k, v in read.items() if k != "n_rows"},
        "not_sampled": not_sampled,
        "counts": counts,
        "l1_mix": {str(k): round(float(v), 4) for k, v in sorted(mix.items())},
        "length": length,
    }


def split_corpus(params: SplitParams, out_dir: str | Path) -> dict[str, Any]:
    """Read and clean ``params.csv``, split it, write the split files into ``out_dir``; return the stats."""
    frame, read = load_corpus(params)
    frame, not_sampled = assign_splits(frame, params)
    counts = write_splits(frame, out_dir)
    logger.info("wrote the splits (documents per level: %s)", {lv: c["total"] for lv, c in counts.items()})
    return split_stats(frame, counts, read, not_sampled)
