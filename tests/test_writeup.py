"""lmlab.writeup: comparison rows survive the JSON round trip; non-finite values become None."""

from __future__ import annotations

import json

import pytest

from lmlab.writeup import NOT_AT_EMBEDDED, WriteupRow, read_rows, write_rows


def test_rows_round_trip_through_the_json_file(tmp_path):
    rows = [
        WriteupRow("perplexity gap", "< 15 %", 4.2, source="monotonic.json:ppl_gap_pct", passed=True),
        WriteupRow("step-0 infill loss", "~9.6", NOT_AT_EMBEDDED, note="needs GPT-2"),
    ]
    path = tmp_path / "writeup" / "monotonic.json"
    write_rows(path, "monotonic", "004", rows)
    payload = json.loads(path.read_text())
    assert payload["family"] == "monotonic" and payload["writeup"] == "004"
    assert read_rows(payload) == rows


def test_non_finite_measurement_is_stored_as_missing():
    assert WriteupRow("ppl", "18", float("nan")).lmlab is None
    assert WriteupRow("ppl", "18", float("inf")).lmlab is None


def test_unknown_field_and_empty_quantity_are_errors():
    with pytest.raises(TypeError):
        read_rows({"rows": [{"quantity": "x", "writeup": "1", "lmlab": 1.0, "colour": "red"}]})
    with pytest.raises(ValueError):
        WriteupRow("", "1", 1.0)
