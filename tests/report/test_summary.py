"""The report stage: every contract number appears in the summary with its source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmlab.report.intervals import is_interval_key
from lmlab.report.summary import (
    FamilyMetrics,
    build_summary,
    headline_keys,
    render_markdown,
)
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
    wl = {"frac_1_2-accept": {"accuracy": 0.7, "precision": 0.6, "recall": 0.9, "f1": 0.72,
                              "acceptance_rate": 0.75, "gamma": 4.0}}
    mono = {"ppl": {"baseline": 20.0, "monotonic": 35.0}, "ppl_gap_pct": 75.0, "attack_reduction_pct": 30.0,
            "uat": {"baseline": {"ppl_increase_pct": 40.0}, "monotonic": {"ppl_increase_pct": 25.0}},
            "hotflip": {"baseline": {"success_rate": 0.5}, "monotonic": {"success_rate": 0.35}}}
    paths = {}
    for name, data in {"ilm": ilm, "ensemble": ens, "weighted": wl, "monotonic": mono}.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(data))
    return paths


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


def _with_intervals(paths: dict[str, Path]) -> list[FamilyMetrics]:
    """The synthetic metrics plus intervals in every convention the families write."""
    data = {f: json.loads(p.read_text()) for f, p in paths.items()}
    data["ilm"]["ppl_ci"] = {m: {t: {"low": v - 1, "high": v + 1} for t, v in row.items()}
                             for m, row in data["ilm"]["ppl"].items()}
    ens = data["ensemble"]
    ens.update(accuracy_ci={"seq2seq": {"low": 0.6, "high": 0.8}, "causal": {"low": 0.5, "high": 0.7}},
               agreement_rate_ci_low=0.5, agreement_rate_ci_high=0.72, majority_accuracy=0.65,
               majority_accuracy_ci_low=0.55, majority_accuracy_ci_high=0.75,
               accuracy_difference={"causal__seq2seq": -0.1},
               accuracy_difference_ci={"causal__seq2seq": {"low": -0.2, "high": 0.0}})
    wl = data["weighted"]
    wl["frac_1_2-accept"].update(accuracy_ci_low=0.65, accuracy_ci_high=0.75, f1_ci_low=0.66, f1_ci_high=0.78,
                                 acceptance_rate_ci_low=0.7, acceptance_rate_ci_high=0.8)
    wl["baseline"] = {"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "acceptance_rate": 0.5}
    wl["gold_acceptance_rate"], wl["gold_acceptance_rate_ci_low"], wl["gold_acceptance_rate_ci_high"] = 0.5, 0.4, 0.6
    mono = data["monotonic"]
    mono.update(ppl_gap_pct_ci_low=60.0, ppl_gap_pct_ci_high=90.0, attack_reduction_pct_ci_low=-10.0,
                attack_reduction_pct_ci_high=70.0)
    return [FamilyMetrics(f, str(paths[f]), d) for f, d in data.items()]


def _headline_rows(text: str) -> dict[str, list[str]]:
    section = text.split("## Headline numbers", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_headline_has_an_interval_column_from_every_convention(tmp_path: Path) -> None:
    headline, bodies = build_summary(_with_intervals(_metrics(tmp_path)))
    text = render_markdown(headline, bodies, {}, tmp_path / "summary.md")
    assert "| key | value | 95% CI | source |" in text
    rows = _headline_rows(text)
    assert set(rows) == set(headline)
    assert all(len(cells) == 3 for cells in rows.values())
    expected = {
        "ilm.ppl.A1.A1": ("10.00", "[9.00, 11.00]"),  # ppl_ci.A1.A1
        "ilm.ppl.all.A1": ("15.00", "[14.00, 16.00]"),  # the general model on A1
        "ilm.ppl.all.all": ("15.50", "[14.50, 16.50]"),
        "ilm.specialization_gain.A1": ("0.125", "[0.100, 0.150]"),
        "ensemble.accuracy.causal": ("0.600", "[0.500, 0.700]"),
        "ensemble.agreement_rate": ("0.610", "[0.500, 0.720]"),
        "ensemble.majority_accuracy": ("0.650", "[0.550, 0.750]"),
        "ensemble.accuracy_difference.causal__seq2seq": ("-0.100", "[-0.200, 0.000]"),
        "weighted.accuracy.frac_1_2-accept": ("0.700", "[0.650, 0.750]"),
        "weighted.f1.frac_1_2-accept": ("0.720", "[0.660, 0.780]"),
        "weighted.acceptance_rate.frac_1_2-accept": ("0.750", "[0.700, 0.800]"),
        "weighted.f1.baseline": ("0.500", "—"),  # no interval in the file: none invented
        "monotonic.ppl_gap_pct": ("75.0", "[60.0, 90.0]"),
        "monotonic.attack_reduction_pct": ("30.0", "[-10.0, 70.0]"),
    }
    for key, (value, ci) in expected.items():
        assert rows[key][:2] == [value, ci], key
    assert rows["weighted.accuracy.frac_1_2-accept"][2] == "`weighted.json`: `frac_1_2-accept.accuracy`"
    assert rows["ilm.ppl.all.B1"][2] == "`ilm.json`: `ppl.all.B1`"
    # readable: only the diagonal and the general model per level, not the 36-cell matrix
    assert "ilm.ppl.A1.B2" not in rows and "ilm.ppl.B1.all" not in rows
    assert headline.intervals["ilm.ppl.B2.B2"] == pytest.approx((12.3, 14.3))
    # summary.json keeps plain numbers under "headline"
    assert json.loads(json.dumps(headline))["ensemble.majority_accuracy"] == 0.65


def test_ci_keys_are_never_listed_as_configs_models_or_metrics(tmp_path: Path) -> None:
    families = _with_intervals(_metrics(tmp_path))
    headline, bodies = build_summary(families)
    assert not [k for k in headline if "_ci" in k]
    weighted = "\n".join(bodies["weighted"])
    assert "| **frac_1_2-accept** | 4.00 | 0.700 [0.650, 0.750] | 0.600 | 0.900 | 0.720 [0.660, 0.780] | 0.750 [0.700, 0.800] |" in weighted
    assert "_ci_low**" not in weighted and "**gold_acceptance_rate" not in weighted
    configs = [line.split("|")[1].strip() for line in weighted.splitlines() if line.startswith("| **")]
    assert configs == ["**frac_1_2-accept**", "**baseline**"]
    ens = "\n".join(bodies["ensemble"])
    assert "agreement rate **0.610 [0.500, 0.720]**" in ens
    assert "| **causal** | 0.600 [0.500, 0.700] | 0.800 |" in ens
    assert "causal__seq2seq -0.100 [-0.200, 0.000]" in ens
    ilm = "\n".join(bodies["ilm"])
    assert "| **A2** | 11.00 [10.00, 12.00] | 11.10 [10.10, 12.10] |" in ilm and "ppl_ci.<model>.<test_level>" in ilm
    mono = "\n".join(bodies["monotonic"])
    assert "**75.0 %** (`ppl_gap_pct`, 95% CI [60.0, 90.0])" in mono


def test_missing_intervals_show_a_dash_not_a_guess(tmp_path: Path) -> None:
    paths = _metrics(tmp_path)
    families = [FamilyMetrics(f, str(p), json.loads(p.read_text())) for f, p in paths.items()]
    headline, bodies = build_summary(families)
    rows = _headline_rows(render_markdown(headline, bodies, {}, tmp_path / "summary.md"))
    for key in ("ilm.ppl.A1.A1", "ensemble.accuracy.causal", "ensemble.agreement_rate", "weighted.f1.frac_1_2-accept",
                "monotonic.ppl_gap_pct"):
        assert rows[key][1] == "—", key
    assert rows["ilm.specialization_gain.C1"][1] == "[-0.200, 0.100]"
    assert "ensemble.majority_accuracy" not in headline  # absent from the file: no row at all
    assert "no `ppl_ci` intervals" in "\n".join(bodies["ilm"])


def test_render_markdown_accepts_a_plain_headline_dict(tmp_path: Path) -> None:
    text = render_markdown({"x.y": 0.5}, {}, {}, tmp_path / "summary.md")
    assert "| `x.y` | 0.500 | — |  |" in text


def test_headline_keys_name_the_metric_paths_of_every_run(tmp_path: Path) -> None:
    with_ci = {f.family: f.data for f in _with_intervals(_metrics(tmp_path))}
    plain = {f: json.loads(p.read_text()) for f, p in _metrics(tmp_path).items()}
    keys = headline_keys({"run0": plain, "run1": with_ci})
    assert keys["weighted"][:3] == ["frac_1_2-accept.accuracy", "frac_1_2-accept.f1",
                                    "frac_1_2-accept.acceptance_rate"]
    assert "baseline.f1" in keys["weighted"]  # only in run1: still listed, once
    assert keys["ensemble"].count("agreement_rate") == 1 and "majority_accuracy" in keys["ensemble"]
    assert keys["ilm"][:3] == ["ppl.A1.A1", "ppl.all.A1", "specialization_gain.A1"]
    assert keys["monotonic"] == ["ppl_gap_pct", "attack_reduction_pct"]
    assert not any(is_interval_key(k) for family in keys.values() for k in family)


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


def test_collapsed_monotone_model_is_reported_not_meaningful_with_its_criteria() -> None:
    data = {"ppl": {"baseline": 143.0, "monotonic": 105000.0, "monotonic_before_recovery": 2.1e6, "pretrained": 20.0},
            "ppl_gap_pct": 73300.0, "attack_reduction_pct": None, "attack_reduction_meaningful": False,
            "criteria": {"ppl_gap_lt_15": False, "attack_reduction_gt_40": False}}
    _, bodies = build_summary([FamilyMetrics("monotonic", "monotonic.json", data)])
    text = "\n".join(bodies["monotonic"])
    assert "Robustness NOT MEANINGFUL" in text and "reduction **n/a %**" in text
    assert "`ppl_gap_lt_15` FAIL" in text and "before recovery" in text
    ok = {**data, "attack_reduction_pct": 12.0, "attack_reduction_meaningful": True}
    assert "NOT MEANINGFUL" not in "\n".join(build_summary([FamilyMetrics("monotonic", "m.json", ok)])[1]["monotonic"])
