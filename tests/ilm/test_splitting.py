"""ilm_split: cleaning, label normalisation, bad inputs, stratification, the `all` union, the stage."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from lmlab.errors import InputError
from lmlab.ilm import splitting
from lmlab.ilm.corpus import generate_learner_corpus
from lmlab.ilm.splitting import LEVELS, SPLITS, SplitParams, load_corpus, normalise_text, split_corpus
from stages.ilm_split import main
from tests.conftest import write_params

HEADER = ["id", "text", "cefr", "l1"]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.csv"
    generate_learner_corpus(1500, seed=1).to_csv(path, index=False, lineterminator="\n")
    return path


@pytest.fixture(scope="module")
def sample_splits(sample_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("splits")
    return out, split_corpus(SplitParams(csv=str(sample_csv), seed=0), out)


def read_split(out: Path, level: str, split: str) -> tuple[list[str], pd.DataFrame]:
    """Documents the way the reference ILM reads them, and the metadata file."""
    raw = (out / level / f"{split}.txt").read_text(encoding="utf-8")
    docs = [d.strip() for d in raw.strip().split("\n\n\n")] if raw else []
    meta = pd.read_csv(out / level / f"{split}.meta.csv", dtype=str, keep_default_na=False)
    return docs, meta


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----- cleaning and labels -----

@pytest.mark.parametrize(("raw", "expected"), [
    (" b1 ", "B1"), ("a1", "A1"), ("A2", "A2"), ("c1\t", "C1"), ("B2", "B2"),
    ("B3", None), ("C2", None), ("", None), ("   ", None), ("b 1", None), ("A1+", None),
])
def test_label_normalisation(tmp_path: Path, raw: str, expected: str | None) -> None:
    path = write_csv(tmp_path / "c.csv", [["1", "I am agree with you.", raw, "Spanish"], ["2", "Ok.", "A1", "Spanish"]])
    frame, read = load_corpus(SplitParams(csv=str(path)))
    if expected is None:
        assert list(frame["id"]) == ["2"]
        reason = "empty_label" if not raw.strip() else "unknown_label"
        assert read[reason] == 1 and read["n_rows"] == 2
    else:
        assert list(frame["cefr"]) == [expected, "A1"]


def test_strict_labels_reject_with_the_file_line(tmp_path: Path) -> None:
    rows = [["1", "First line\nsecond line\n\nthird", "A1", "German"], ["2", "Fine.", "b1", "German"],
            ["3", "My level is wrong.", "C2", "German"]]
    path = write_csv(tmp_path / "c.csv", rows)
    with pytest.raises(InputError) as err:
        load_corpus(SplitParams(csv=str(path), strict_labels=True))
    assert err.value.line == 7  # header 1, record 1 spans lines 2-5, record 2 line 6
    assert "'C2'" in str(err.value) and "strict_labels" in str(err.value)
    frame, read = load_corpus(SplitParams(csv=str(path)))
    assert read["unknown_label"] == 1 and len(frame) == 2


def test_texts_are_normalised_but_never_corrected(tmp_path: Path) -> None:
    learner = "  I am agree with you , he go to school  since two years.\r\n\r\n   Informations  is  useful!!  \n\t\n"
    rows = [["1", learner, "A1", "French"], ["2", "   ", "A1", "French"], ["3", "", "A2", "French"],
            ["4", "\n\n", "A2", "French"], ["5", "Other text.", "A2", ""]]
    frame, read = load_corpus(SplitParams(csv=str(write_csv(tmp_path / "c.csv", rows))))
    assert frame["text"].iat[0] == "I am agree with you , he go to school  since two years.\nInformations  is  useful!!"
    assert read["empty_text"] == 3
    assert list(frame["l1"]) == ["French", "unknown"]


@pytest.mark.parametrize(("text", "expected"), [
    ("a\nb", "a\nb"), (" a ", "a"), ("a\r\nb", "a\nb"), ("a\n\n\n\nb", "a\nb"), ("a\u2028b", "a\nb"),
    ("a\tb", "a\tb"), ("\n x \n", "x"), ("", ""),
])
def test_normalise_text(text: str, expected: str) -> None:
    assert normalise_text(text) == expected


def test_duplicate_texts_are_dropped_and_counted(tmp_path: Path) -> None:
    rows = [["1", "Hello.\n\nI live in Rome.", "A1", "Italian"], ["2", " Hello.\nI live in Rome. ", "A2", "Italian"],
            ["3", "Hello.", "A1", "Italian"]]
    frame, read = load_corpus(SplitParams(csv=str(write_csv(tmp_path / "c.csv", rows))))
    assert list(frame["id"]) == ["1", "3"] and read["duplicate_text"] == 1


def test_custom_column_names_and_missing_id(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [["Hi there.", "a2", "Arabic"], ["Bye.", "B1", "Arabic"]],
                     header=["essay", "level", "native"])
    frame, _ = load_corpus(SplitParams(csv=str(path), text_col="essay", cefr_col="level", l1_col="native"))
    assert list(frame["id"]) == ["1", "2"] and list(frame["cefr"]) == ["A2", "B1"]


def test_a_one_megabyte_document(tmp_path: Path) -> None:
    para = "I am agree that informations is important, becouse people is different. " * 20
    big = "\n".join([para.strip()] * 700)
    assert len(big) > 1_000_000
    rows = [["big", big, "C1", "Turkish"]] + [[str(i), f"Text {i}.", "C1", "Turkish"] for i in range(9)]
    out = tmp_path / "out"
    split_corpus(SplitParams(csv=str(write_csv(tmp_path / "c.csv", rows))), out)
    docs = [d for s in SPLITS for d in read_split(out, "C1", s)[0]]
    assert big in docs and len(docs) == 10


def test_fast_reader_matches_pandas(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes('\ufeffid,text,cefr,l1,extra\r\n1,"a\r\nb, ""q""\n\n",A1,,x\r\n\r\n2,Olá São Paulo,a2,Portuguese,\n'
                     '3,"",B1,German,y\n'.encode())
    cols = ["text", "cefr", "l1", "id"]
    fast = splitting._read_columns_fast(path, "utf-8", cols)
    assert fast is not None
    slow = splitting._read_csv(path, "utf-8-sig", "utf-8")[cols]
    pd.testing.assert_frame_equal(fast, slow.reset_index(drop=True))
    assert fast["text"].tolist() == ['a\r\nb, "q"\n\n', "Olá São Paulo", ""]
    path.write_bytes(b"id,text,cefr,l1\n1,a,b,A1,German\n")  # malformed: left to pandas, which names the line
    assert splitting._read_columns_fast(path, "utf-8", cols) is None


# ----- bad inputs -----

def test_missing_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [["1", "Hi.", "A1"]], header=["id", "text", "level"])
    with pytest.raises(InputError) as err:
        load_corpus(SplitParams(csv=str(path)))
    message = str(err.value)
    assert "'cefr' (ilm.data.cefr_col)" in message and "'l1' (ilm.data.l1_col)" in message and "'text' (ilm" not in message


@pytest.mark.parametrize("content", [b"", b"  \n\n", b"id,text,cefr,l1\n"])
def test_empty_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match="empty|no data rows"):
        load_corpus(SplitParams(csv=str(path)))


def test_not_utf8_names_the_byte_offset(tmp_path: Path) -> None:
    prefix = "id,text,cefr,l1\n1,Olá São Paulo,A1,Portuguese\n2,Caf".encode()
    path = tmp_path / "c.csv"
    path.write_bytes(prefix + b"\xe9 au lait,A1,French\n")
    with pytest.raises(InputError) as err:
        load_corpus(SplitParams(csv=str(path)))
    assert f"byte offset {len(prefix)}" in str(err.value) and "0xe9" in str(err.value)
    assert (err.value.line, err.value.column) == (3, len(b"2,Caf") + 1)
    frame, _ = load_corpus(SplitParams(csv=str(path), encoding="latin-1"))
    assert frame["text"].iat[1] == "Café au lait"


def test_decoding_error_offset_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(splitting, "_CHUNK", 5)  # multi-byte characters straddle chunk boundaries
    data = "ab\nçãé\nxyz€".encode() + b"\xc3(" + b"tail"
    path = tmp_path / "c.txt"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        splitting.check_encoding(path)
    offset = len("ab\nçãé\nxyz€".encode())
    assert f"byte offset {offset}" in str(err.value)
    assert (err.value.line, err.value.column) == (3, len("xyz€".encode()) + 1)
    path.write_bytes(data.replace(b"\xc3(", b"ok"))
    splitting.check_encoding(path)


def test_utf8_bom_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"\xef\xbb\xbfid,text,cefr,l1\n1,Hi.,A1,German\n")
    assert len(load_corpus(SplitParams(csv=str(path)))[0]) == 1
    path.write_bytes(b"id,text,cefr,l1\n1,Hi.,A1,German\n2,a,b,A1,German,extra\n")
    with pytest.raises(InputError, match="not a valid CSV") as err:
        load_corpus(SplitParams(csv=str(path)))
    assert err.value.line == 3
    path.write_bytes(b'id,text,cefr,l1\n1,"never closed,A1,German\n')
    with pytest.raises(InputError, match="EOF inside string"):
        load_corpus(SplitParams(csv=str(path)))


# ----- splits -----

def test_split_layout_and_ilm_format(sample_splits: tuple[Path, dict]) -> None:
    out, stats = sample_splits
    assert sorted(p.name for p in out.iterdir()) == sorted([*LEVELS, "all"])
    for level in [*LEVELS, "all"]:
        for split in SPLITS:
            docs, meta = read_split(out, level, split)
            assert list(meta.columns) == ["id", "cefr", "l1", "text"]
            assert docs == list(meta["text"])  # same documents, same order
            raw = (out / level / f"{split}.txt").read_text(encoding="utf-8")
            assert raw == "\n\n\n".join(meta["text"]) and "\n\n\n\n" not in raw
            assert all("\n\n" not in d and d == d.strip() for d in docs)
            assert stats["counts"][level][split] == len(docs)
            if level != "all":
                assert set(meta["cefr"]) <= {level}


def test_all_is_the_union_of_the_level_splits(sample_splits: tuple[Path, dict]) -> None:
    out, stats = sample_splits
    seen: dict[str, str] = {}
    for split in SPLITS:
        union = set()
        for level in LEVELS:
            ids = set(read_split(out, level, split)[1]["id"])
            assert not ids & union
            union |= ids
        assert set(read_split(out, "all", split)[1]["id"]) == union
        for i in union:
            assert i not in seen, f"document {i} is in {seen.get(i)} and {split}"
            seen[i] = split
    assert len(seen) == stats["n_documents"] == 1500


def test_split_sizes_and_l1_stratification(sample_splits: tuple[Path, dict], sample_csv: Path) -> None:
    out, stats = sample_splits
    corpus = pd.read_csv(sample_csv, keep_default_na=False)
    for level in LEVELS:
        n = int((corpus["cefr"] == level).sum())
        counts = stats["counts"][level]
        assert n >= 3 and counts["test"] == counts["valid"] == max(1, int(n * 0.1 + 0.5))  # half rounds up
        assert counts["train"] + counts["valid"] + counts["test"] == n
        groups = corpus.loc[corpus["cefr"] == level, "l1"].value_counts()
        test_l1 = read_split(out, level, "test")[1]["l1"].value_counts()
        for lang, size in groups.items():  # each L1 holds its share of the test split, up to rounding
            assert abs(test_l1.get(lang, 0) - size * counts["test"] / n) < 1.0 + 1e-9, (level, lang)
    assert stats["length"]["C1"]["words_mean"] > stats["length"]["A1"]["words_mean"]
    assert abs(sum(stats["l1_mix"].values()) - 1) < 1e-3


def test_same_seed_byte_identical_other_seed_differs(sample_csv: Path, sample_splits: tuple[Path, dict],
                                                     tmp_path: Path) -> None:
    out, stats = sample_splits
    again = split_corpus(SplitParams(csv=str(sample_csv), seed=0), tmp_path / "a")
    assert tree_digest(tmp_path / "a") == tree_digest(out) and again == stats
    split_corpus(SplitParams(csv=str(sample_csv), seed=1), tmp_path / "b")
    assert read_split(tmp_path / "b", "A1", "test")[1]["id"].tolist() != read_split(out, "A1", "test")[1]["id"].tolist()


def test_sample_size_draws_a_stratified_subsample(sample_csv: Path, tmp_path: Path) -> None:
    stats = split_corpus(SplitParams(csv=str(sample_csv), sample_size=100), tmp_path / "s")
    assert stats["n_documents"] == 100 and stats["not_sampled"] == 1400
    assert stats["counts"]["all"]["total"] == 100
    assert stats["counts"]["A1"]["total"] > stats["counts"]["B1"]["total"] >= stats["counts"]["C1"]["total"] >= 3
    for level in LEVELS:  # every level can be trained and evaluated
        assert all(stats["counts"][level][s] >= 1 for s in SPLITS)
    assert stats["l1_mix"]["Portuguese"] > 0.3


# ----- the stage -----

def stage_params(tmp_path: Path, csv_path: Path, **extra: object) -> Path:
    """The params ilm_split reads, reading ``csv_path``; ``extra`` overrides keys of ``ilm.data``."""
    overrides = {"seed": 0, "ilm.sample.n_documents": 100, "ilm.data.csv": str(csv_path),
                 **{f"ilm.data.{key}": value for key, value in extra.items()}}
    return write_params(tmp_path / "params.yaml", overrides, sections=("seed", "ilm.sample", "ilm.data"))


def test_stage_smoke(sample_csv: Path, tmp_path: Path) -> None:
    out, metrics = tmp_path / "splits", tmp_path / "m" / "ilm_split.json"
    params = stage_params(tmp_path, sample_csv, sample_size=100)
    assert main(["--params", str(params), "--out", str(out), "--metrics", str(metrics)]) == 0
    stats = json.loads(metrics.read_text())
    assert stats["n_documents"] == 100 and set(stats["counts"]) == {*LEVELS, "all"}
    assert all(len(list((out / lv).iterdir())) == 6 for lv in [*LEVELS, "all"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "params.yaml", "splits"]


@pytest.mark.parametrize("bad", ["missing_column", "bad_param", "not_utf8"])
def test_stage_failure_leaves_no_output(sample_csv: Path, tmp_path: Path, bad: str) -> None:
    out, metrics = tmp_path / "splits", tmp_path / "ilm_split.json"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    metrics.write_text("{}")
    csv_path = tmp_path / "c.csv"
    if bad == "missing_column":
        write_csv(csv_path, [["1", "Hi.", "A1"]], header=["id", "text", "cefr"])
    elif bad == "not_utf8":
        csv_path.write_bytes(b"id,text,cefr,l1\n1,\xff,A1,German\n")
    else:
        write_csv(csv_path, [["1", "Hi.", "A1", "German"]])
    extra = {"encoding": "no-such-codec"} if bad == "bad_param" else {}
    params = stage_params(tmp_path, csv_path, **extra)
    assert main(["--params", str(params), "--out", str(out), "--metrics", str(metrics)]) == 2
    assert not out.exists() and not metrics.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
