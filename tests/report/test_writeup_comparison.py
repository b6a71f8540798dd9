"""The summary's write-up comparison: rows from the families' JSON, verdicts, reasons instead of numbers."""

from __future__ import annotations

import json
from pathlib import Path

from lmlab.report.writeup_comparison import WriteupComparison, criteria_counts, render_comparison
from lmlab.writeup import NOT_AT_EMBEDDED, WriteupRow, rows_payload


def _payloads() -> dict:
    rows = [
        WriteupRow("perplexity gap (%)", "< 15", 4.25, source="monotonic.json:ppl_gap_pct", passed=True),
        WriteupRow("attack reduction (%)", "> 40", -7.1, source="monotonic.json:attack_reduction_pct", passed=False),
        WriteupRow("perplexity before recovery", "~18-20", NOT_AT_EMBEDDED, note="Pythia-1.4B | GPU"),
    ]
    return {"monotonic": ("reports/writeup/monotonic.json", rows_payload("monotonic", "004", rows))}


def test_section_shows_each_number_beside_the_writeups_with_verdicts():
    comparison = WriteupComparison.from_payloads(_payloads())
    text = "\n".join(render_comparison(comparison))
    assert "## Write-up comparison" in text
    assert "criteria: 1 pass, 1 fail" in text
    assert "| perplexity gap (%) | < 15 | 4.25 | PASS | `monotonic.json:ppl_gap_pct` |" in text
    assert "| attack reduction (%) | > 40 | -7.1 | FAIL |" in text
    assert f"| {NOT_AT_EMBEDDED} |" in text and "Pythia-1.4B \\| GPU" in text  # pipes escaped in cells


def test_no_rows_no_section_and_counts_ignore_rows_without_criterion():
    assert render_comparison(WriteupComparison()) == []
    rows = WriteupComparison.from_payloads(_payloads())["monotonic"]
    assert criteria_counts(rows) == (1, 1)


def test_report_stage_renders_the_comparison_after_the_families(tmp_path: Path):
    from stages.report import main as report_main

    metrics = tmp_path / "monotonic.json"
    metrics.write_text(json.dumps({"ppl": {"baseline": 10.0, "monotonic": 10.4}, "ppl_gap_pct": 4.0}))
    path, payload = _payloads()["monotonic"]
    writeup = tmp_path / "writeup.json"
    writeup.write_text(json.dumps(payload))
    out_md, out_json = tmp_path / "summary.md", tmp_path / "summary.json"
    report_main(["--metrics", f"monotonic={metrics}", "--writeup", f"monotonic={writeup}",
                 "--out-md", str(out_md), "--out-json", str(out_json)])
    text = out_md.read_text()
    assert text.index("## Write-up comparison") > text.index("## Headline numbers")
    assert json.loads(out_json.read_text())["writeup"]["monotonic"][1]["passed"] is False
