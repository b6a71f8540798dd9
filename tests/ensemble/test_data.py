"""Stratified split, class stripping, and the ens_sample / ens_split stages (incl. bad input)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from lmlab.ensemble.corpus import SampleParams, generate_gadget_rows
from lmlab.ensemble.data import (
    DataParams,
    format_prompt,
    prepare_rows,
    split_rows,
    stratified_split,
    subsample_rows,
    writeup_split,
)
from tests.conftest import write_params

SECTIONS = ("seed", "ensemble.sample", "ensemble.data")
SMALL = {"seed": 0, "ensemble.sample.n_rows": 96, "ensemble.data.valid_fraction": 0.1,
         "ensemble.data.test_fraction": 0.2}


def _rows(n=200, seed=0):
    return prepare_rows(generate_gadget_rows(SampleParams(n_rows=n, seed=seed)), strip_class=True)


def test_prompt_template():
    assert format_prompt(" Find gadgets. ", "1.1 Heading\nText.\n") == "Task: Find gadgets.\n\nExcerpt:\n1.1 Heading\nText.\n\nAnswer:"


def test_split_is_stratified_disjoint_and_seeded():
    rows = _rows()
    splits = stratified_split(rows, 0.1, 0.2, seed=0)
    ids = {k: [r["row_id"] for r in v] for k, v in splits.items()}
    assert sum(len(v) for v in ids.values()) == len(rows)
    assert not (set(ids["train"]) & set(ids["test"])) and not (set(ids["valid"]) & set(ids["test"]))
    by_class = Counter(r["gold_class"] for r in rows)
    test_classes = Counter(r["gold_class"] for r in splits["test"])
    assert set(test_classes) == set(by_class)  # every class is evaluated
    for label, n in by_class.items():
        assert abs(test_classes[label] - 0.2 * n) <= 1
    assert stratified_split(rows, 0.1, 0.2, seed=0) == splits
    assert stratified_split(rows, 0.1, 0.2, seed=1)["test"] != splits["test"]
    assert ids["test"] != sorted(ids["test"])  # shuffled, never the first N


def test_strip_keeps_original_for_the_baseline():
    raw = generate_gadget_rows(SampleParams(n_rows=16, seed=0))
    kept = prepare_rows(raw, strip_class=False)
    stripped = prepare_rows(raw, strip_class=True)
    assert all(r["instruction"] == r["instruction_original"] for r in kept)
    assert all(r["instruction"] != r["instruction_original"] for r in stripped)
    assert all(r["instruction_original"] == o["instruction"] for r, o in zip(stripped, raw))


def test_subsample_first_n_or_a_seeded_sample():
    rows = _rows(50)
    assert [r["row_id"] for r in subsample_rows(rows, 10, "first", seed=0)] == list(range(10))
    sampled = [r["row_id"] for r in subsample_rows(rows, 10, "random", seed=0)]
    assert len(set(sampled)) == 10 and sampled == sorted(sampled) and sampled != list(range(10))
    assert sampled == [r["row_id"] for r in subsample_rows(rows, 10, "random", seed=0)]
    assert sampled != [r["row_id"] for r in subsample_rows(rows, 10, "random", seed=1)]
    assert subsample_rows(rows, 0, "first", 0) == rows == subsample_rows(rows, 500, "random", 0)


def test_writeup_split_is_90_10_and_compares_on_validation():
    rows = _rows(200)
    splits = split_rows(rows, DataParams(subsample_n=100, split="writeup"))
    assert (len(splits["train"]), len(splits["valid"])) == (90, 10)
    assert splits["test"] == splits["valid"]  # the write-up compares on its validation rows
    ids = [r["row_id"] for r in splits["train"] + splits["valid"]]
    assert sorted(ids) == list(range(100))  # the first 100 rows, every one used once
    assert splits == writeup_split(rows[:100], 0.1, seed=0)
    assert writeup_split(rows[:100], 0.1, seed=1)["valid"] != splits["valid"]
    # the default is unchanged: stratified over every row
    assert split_rows(rows, DataParams()) == stratified_split(rows, 0.1, 0.2, seed=0)
    with pytest.raises(ValueError, match="subsample_n"):
        DataParams(subsample_n=-1)


def _write_params(tmp_path: Path, jsonl: Path, strip: bool = True, **extra) -> Path:
    overrides = {"ensemble.data.jsonl": str(jsonl), "ensemble.data.strip_class_from_instruction": strip}
    overrides.update({f"ensemble.data.{k}": v for k, v in extra.items()})
    return write_params(tmp_path / "params.yaml", {**SMALL, **overrides}, sections=SECTIONS)


def test_split_stage_with_the_writeup_protocol_and_the_class_left_in(tmp_path):
    from stages.ens_sample import main as sample_main
    from stages.ens_split import main as split_main

    jsonl = tmp_path / "gadgets.jsonl"
    params = _write_params(tmp_path, jsonl, strip=False, subsample_n=40, split="writeup")
    assert sample_main(["--params", str(params), "--out", str(jsonl)]) == 0
    out = tmp_path / "split"
    assert split_main(["--params", str(params), "--out-dir", str(out)]) == 0
    parts = {n: [json.loads(x) for x in (out / f"{n}.jsonl").read_text().splitlines()] for n in ("train", "valid", "test")}
    assert (len(parts["train"]), len(parts["valid"])) == (36, 4) and parts["test"] == parts["valid"]
    # the class stays in the prompt: the copy baseline reads it from the instruction the model sees
    assert all(r["instruction"] == r["instruction_original"] for r in parts["train"])
    from lmlab.ensemble.labels import find_class_in_text

    assert all(find_class_in_text(r["instruction"]) for r in parts["train"] + parts["test"])


def test_sample_and_split_stages(tmp_path):
    from stages.ens_sample import main as sample_main
    from stages.ens_split import main as split_main

    jsonl = tmp_path / "gadgets.jsonl"
    params = _write_params(tmp_path, jsonl)
    assert sample_main(["--params", str(params), "--out", str(jsonl)]) == 0
    first = jsonl.read_bytes()
    assert sample_main(["--params", str(params), "--out", str(jsonl)]) == 0
    assert jsonl.read_bytes() == first  # byte-identical
    out = tmp_path / "split"
    assert split_main(["--params", str(params), "--out-dir", str(out)]) == 0
    counts = {n: len((out / f"{n}.jsonl").read_text().splitlines()) for n in ("train", "valid", "test")}
    assert sum(counts.values()) == 96 and counts["test"] >= 8
    row = json.loads((out / "test.jsonl").read_text().splitlines()[0])
    assert {"instruction", "instruction_original", "input", "output", "gold_class", "row_id"} <= set(row)


@pytest.mark.parametrize(("content", "message"), [
    ('{"instruction": "a", "input": "b", "output": "gadget_type: RW; location: x; explanation: y"}\nnot json\n',
     ":2:"),
    ('{"instruction": "a", "output": "gadget_type: RW; location: x; explanation: y"}\n', "missing field 'input'"),
    ("", "holds no rows"),
    ("\n\n", "holds no rows"),
])
def test_bad_input_is_a_clear_error_without_outputs(tmp_path, caplog, content, message):
    from stages.ens_split import main as split_main

    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    params = _write_params(tmp_path, bad)
    out = tmp_path / "split"
    assert split_main(["--params", str(params), "--out-dir", str(out)]) == 2
    assert not out.exists()
    text = " ".join(r.getMessage() for r in caplog.records)
    assert str(bad) in text and message in text
