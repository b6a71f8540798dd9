"""Masking split files: reading the ILM format, worker independence, the ilm_mask stage, preview."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmlab.ilm.masked_splits import iter_documents, mask_split
from lmlab.ilm.masking import MaskParams
from lmlab.ilm.pickles import load_pickle
from tests.conftest import write_params

MASK_SECTIONS = ("seed", "ilm.mask")
SMALL_MASK = {"seed": 1, "ilm.mask.examples_per_document": {"train": 5, "valid": 2, "test": 2},
              "ilm.mask.workers": 1}


@pytest.fixture(scope="module")
def learner_docs() -> list[str]:
    from lmlab.ilm.corpus import generate_learner_corpus

    return [str(t).strip() for t in generate_learner_corpus(40, seed=7).text]


def _write_split(path: Path, docs: list[str]) -> None:
    path.write_text("\n\n\n".join(docs), encoding="utf-8")
    rows = "".join(f'{i},A1,Portuguese,"{d}"\n' for i, d in enumerate(docs))
    path.with_suffix(".meta.csv").write_text("id,cefr,l1,text\n" + rows, encoding="utf-8")


def test_iter_documents_matches_reference_reading(tmp_path: Path) -> None:
    raw = "\n\n  A1 doc.\nSecond line.\n\n\nB doc\n\n\n\n\n\n\nC\n\n\n\nD\r\n\r\n\r\nE\n\n\n  \n"
    path = tmp_path / "x.txt"
    path.write_bytes(raw.encode())
    with open(path) as handle:
        reference = [e.strip() for e in handle.read().strip().split("\n\n\n")]
    assert list(iter_documents(path, block=3)) == reference == list(iter_documents(path))
    path.write_text(" \n\n\n ")
    assert list(iter_documents(path)) == []


def test_worker_count_does_not_change_the_pickle(tmp_path: Path, nltk_data: Path, learner_docs: list[str]) -> None:
    src = tmp_path / "train.txt"
    _write_split(src, learner_docs[:40])
    outputs = []
    for workers in (1, 2):
        params = MaskParams(workers=workers, chunk_documents=7, seed=3)
        out = tmp_path / f"w{workers}.pkl"
        stats = mask_split(src, out, params, "train", 3, nltk_data=nltk_data)
        assert stats.documents == 40 and stats.examples == 120
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    items = load_pickle(tmp_path / "w1.pkl")
    assert [doc for doc, _ in items] == learner_docs[:40]


def _stage_dirs(tmp_path: Path, nltk_data: Path) -> tuple[Path, list[str]]:
    splits = tmp_path / "splits" / "A1"
    splits.mkdir(parents=True)
    for name, n in (("train", 12), ("valid", 3), ("test", 3)):
        _write_split(splits / f"{name}.txt", [f"My name is Ana {i}. I live in Lisbon, it's big.\nBye!"
                                              for i in range(n)])
    params = write_params(tmp_path / "params.yaml", SMALL_MASK, sections=MASK_SECTIONS)
    args = ["--params", str(params), "--splits", str(splits), "--nltk-data", str(nltk_data),
            "--out", str(tmp_path / "masked" / "A1"), "--stats", str(tmp_path / "stats" / "A1.json")]
    return splits, args


def test_stage_main_and_preview(tmp_path: Path, nltk_data: Path, capsys) -> None:
    from lmlab.ilm.cli import main as cli_main
    from stages.ilm_mask import main

    _, args = _stage_dirs(tmp_path, nltk_data)
    assert main(args) == 0
    stats = json.loads((tmp_path / "stats" / "A1.json").read_text())
    assert stats["train"]["documents"] == 12 and stats["valid"]["examples"] == 6
    assert set(stats["test"]["span_type_share"]) == {"document", "paragraph", "sentence", "ngram", "word"}
    first = (tmp_path / "masked" / "A1" / "train.pkl").read_bytes()
    items = load_pickle(tmp_path / "masked" / "A1" / "train.pkl")
    assert len(items) == 12 and all(len(examples) == 5 for _, examples in items)
    assert main(args) == 0 and (tmp_path / "masked" / "A1" / "train.pkl").read_bytes() == first

    capsys.readouterr()
    assert cli_main(["preview", str(tmp_path / "masked" / "A1" / "train.pkl"), "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("ORIGINAL:") == 2 and "CONTEXT:" in out and "ANSWERS:" in out


def test_stage_bad_inputs_leave_no_output(tmp_path: Path, nltk_data: Path) -> None:
    from stages.ilm_mask import main

    splits, args = _stage_dirs(tmp_path, nltk_data)
    (splits / "valid.meta.csv").write_text("id,cefr,l1,text\n0,A1,Spanish,x\n", encoding="utf-8")  # 3 docs, 1 row
    assert main(args) == 2
    assert not (tmp_path / "masked" / "A1").exists() and not (tmp_path / "stats" / "A1.json").exists()
    (splits / "test.txt").unlink()
    assert main(args) == 2
    bad = write_params(tmp_path / "bad.yaml", {"seed": 1, "ilm.mask.p_word": 1.5}, sections=MASK_SECTIONS)
    assert main(["--params", str(bad), *args[2:]]) == 2
    assert not (tmp_path / "masked" / "A1").exists()


def test_non_utf8_split_is_an_input_error(tmp_path: Path) -> None:
    from lmlab.errors import InputError

    path = tmp_path / "train.txt"
    path.write_bytes(b"Good doc.\n\n\nBad \xff byte.")
    with pytest.raises(InputError, match="not valid utf-8"):
        list(iter_documents(path))
