"""The embedded gadget sample: deterministic, balanced, upstream format, realistic noise."""

from __future__ import annotations

from collections import Counter

import pytest

from lmlab.ensemble.corpus import SampleParams, generate_gadget_rows
from lmlab.ensemble.labels import (
    CANONICAL,
    extract_gadget_type,
    find_class_in_text,
    format_ok_strict,
    normalize_gadget_type,
)


def test_deterministic_from_seed():
    a = generate_gadget_rows(SampleParams(n_rows=80, seed=3))
    assert a == generate_gadget_rows(SampleParams(n_rows=80, seed=3))
    assert a != generate_gadget_rows(SampleParams(n_rows=80, seed=4))


def test_rows_have_upstream_format_and_all_classes():
    rows = generate_gadget_rows(SampleParams(n_rows=400, seed=0))
    assert len(rows) == 400
    for row in rows:
        assert set(row) >= {"instruction", "input", "output"}
        assert format_ok_strict(row["output"]), row["output"]
        assert row["input"].strip() and "\n" in row["input"]  # section heading + text
    gold = Counter(normalize_gadget_type(extract_gadget_type(r["output"])) for r in rows)
    assert set(gold) == set(CANONICAL)  # every gold label maps to a class (variants included)
    assert min(gold.values()) >= 30


def test_instruction_names_the_class_and_noise_is_realistic():
    rows = generate_gadget_rows(SampleParams(n_rows=400, label_noise=0.1, seed=0))
    named = [find_class_in_text(r["instruction"]) for r in rows]
    gold = [normalize_gadget_type(extract_gadget_type(r["output"])) for r in rows]
    assert all(n is not None for n in named)  # the upstream leak, reproduced
    disagree = sum(n != g for n, g in zip(named, gold)) / len(rows)
    assert 0.04 < disagree < 0.2  # ~10 % swapped labels
    variants = sum("gadgets" in r["output"] or "-write" in r["output"] for r in rows)
    assert variants > 0
    assert len({r["input"] for r in rows}) > 300  # excerpts vary


def test_no_noise_means_instruction_class_is_gold():
    rows = generate_gadget_rows(SampleParams(n_rows=64, label_noise=0.0, seed=1))
    assert all(find_class_in_text(r["instruction"]) == normalize_gadget_type(extract_gadget_type(r["output"]))
               for r in rows)


def test_params_validation():
    with pytest.raises(ValueError, match="n_rows"):
        SampleParams(n_rows=4)
    with pytest.raises(ValueError, match="label_noise"):
        SampleParams(label_noise=1.5)
