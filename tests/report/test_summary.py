"""The report stage: every contract number appears in the summary with its source."""

from __future__ import annotations

import json
from pathlib import Path

from lmlab.report.summary import FamilyMetrics, build_summary, flatten
from stages.report import main

LEVELS = ("A1", "A2", "B1", "B2", "C1", "all")


def _metrics(tmp_path: Path) -> dict[str, Path]:
    ilm = {
        "ppl": {m: {t: 10.0 + i + j / 10 for j, t in enumerate(LEVELS)} for i, m in enumerate(LEVELS)},
        "specialization_gain": {"A1": 0.125, "C1": -0.05},
        "specialization_gain_ci": {"A1": {"low": 0.1, "high": 0.15}, "C1": {"low": -0.2, "high": 0.1}},
    }
    ens = {"agreement_rate": 0.61, "n": 80, "format_accuracy": {"seq2seq": 0.9, "causal": 0.8},
           "rouge1": {"seq2seq": 0.5, "causal": 0.4}, "rougeL": {"seq2seq": 0.45, "causal": 0.35},
           "accuracy": {"seq2seq": 0.7, "causal": 0.6}}
    wl = {"gamma": 4.0, "frac_1_2-accept": {"accuracy": 0.7, "precision": 0.6, "recall": 0.9, "f1": 0.72,
                                            "acceptance_rate": 0.75}}
    mono = {"ppl": {"baseline": 20.0, "monotonic": 35.0}, "ppl_gap_pct": 75.0, "attack_reduction_pct": 30.0,
            "uat": {"baseline": {"ppl_increase_pct": 40.0}, "monotonic": {"ppl_increase_pct": 25.0}},
            "hotflip": {"baseline": {"success_rate": 0.5}, "monotonic": {"success_rate": 0.35}}}
    paths = {}
    for name, data in {"ilm": ilm, "ensemble": ens, "weighted": wl, "monotonic": mono}.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(data))
    return paths


def test_flatten_dots_nested_keys() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_summary_numbers_and_verdicts(tmp_path: Path) -> None:
    paths = _metrics(tmp_path)
    families = [FamilyMetrics(f, str(p), json.loads(p.read_text())) for f, p in paths.items()]
    headline, bodies = build_summary(families)
    assert headline["ilm.specialization_gain.A1"] == 0.125
    assert headline["monotonic.ppl_gap_pct"] == 75.0
    assert headline["weighted.acceptance_rate.frac_1_2-accept"] == 0.75
    ilm_text = "\n".join(bodies["ilm"])
    assert "| A1 | 0.125 | [0.100, 0.150] | helps |" in ilm_text
    assert "| C1 | -0.050 | [-0.200, 0.100] | no significant difference |" in ilm_text
    assert "| **A2** | 11.00 | 11.10 |" in ilm_text


def test_stage_writes_markdown_and_json_with_sources(tmp_path: Path) -> None:
    paths = _metrics(tmp_path)
    plot = tmp_path / "plots" / "heat.png"
    plot.parent.mkdir()
    plot.write_bytes(b"png")
    out_md, out_json = tmp_path / "reports" / "summary.md", tmp_path / "reports" / "summary.json"
    argv = ["--metrics", *[f"{f}={p}" for f, p in paths.items()], "--plot", f"ilm={plot}",
            "--out-md", str(out_md), "--out-json", str(out_json)]
    assert main(argv) == 0
    text = out_md.read_text()
    assert f"`{paths['monotonic']}`" in text and "![heat](../plots/heat.png)" in text
    assert json.loads(out_json.read_text())["sources"]["weighted"] == str(paths["weighted"])


def test_stage_reports_broken_metrics_file(tmp_path: Path, caplog) -> None:
    bad = tmp_path / "ilm.json"
    bad.write_text('{"ppl": ')
    out_md = tmp_path / "summary.md"
    assert main(["--metrics", f"ilm={bad}", "--out-md", str(out_md), "--out-json", str(tmp_path / "s.json")]) == 2
    assert f"{bad}:1:" in caplog.text and not out_md.exists()
