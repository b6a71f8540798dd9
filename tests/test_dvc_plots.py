"""The DVC-native plots of dvc.yaml: data in git, overlaid by `dvc plots diff`, drawn offline.

- every plot of ``dvc.yaml`` reads files that a stage writes as a ``cache: false`` out (so they
  live in git and render on a fresh clone without ``dvc pull``), and no ``cache: false`` out is a
  model or checkpoint dir (nothing large lands in git);
- in a copy of the repository with plot data written by the stages' own writers (from synthetic
  evaluation results), ``dvc plots diff HEAD`` of a committed and a changed workspace puts both
  revisions' data into the *same* chart of every declared plot (an overlay, not two images);
- (slow) ``dvc plots show`` with the committed offline template, opened in a real headless
  Chromium with no network, draws every chart (one ``<canvas>`` per vega-embed div), while DVC's
  default CDN template draws none: the test can fail.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, copy_repository

DVC_YAML = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def _expand(value: str, item: str | None, key: str | None) -> str:
    return value.replace("${item}", str(item)).replace("${key}", str(key))


def _cache_false_outs() -> set[str]:
    """Every ``cache: false`` out/metric/plot path of every stage, foreach expanded."""
    found: set[str] = set()
    for body in DVC_YAML["stages"].values():
        variants: list[tuple[str | None, str | None]] = [(None, None)]
        if "foreach" in body:
            each = body["foreach"]
            if isinstance(each, str):  # ${a.b}: a params dict (keys) or list
                node = PARAMS
                for part in each.strip("${}").split("."):
                    node = node[part]
                each = node
            variants = [(k, k) for k in each] if isinstance(each, dict) else [(i, None) for i in each]
            body = body["do"]
        for kind in ("outs", "metrics", "plots"):
            for entry in body.get(kind, []):
                if isinstance(entry, dict):
                    (path, opts), = entry.items()
                    if opts and opts.get("cache") is False:
                        found.update(_expand(path, item, key) for item, key in variants)
    return found


def _plot_files() -> dict[str, list[str]]:
    """Top-level plot id -> the files (or directories) it reads."""
    files: dict[str, list[str]] = {}
    for entry in DVC_YAML["plots"]:
        (pid, props), = entry.items() if isinstance(entry, dict) else [(entry, None)]
        y = (props or {}).get("y")
        files[pid] = list(y) if isinstance(y, dict) else [pid]
    return files


def test_every_plot_reads_git_tracked_outputs_and_no_model_lands_in_git():
    outs = _cache_false_outs()
    for pid, paths in _plot_files().items():
        for path in paths:
            assert any(path == o or path.startswith(o.rstrip("/") + "/") for o in outs), (
                f"plot '{pid}' reads {path}, which is no cache: false out: it would need `dvc pull`")
    big = sorted(o for o in outs if o.startswith(("models/", "checkpoints/", "data/")))
    assert not big, f"cache: false (git-tracked) outs that hold models or data: {big}"
    assert {f"dvclive/weighted/{c}" for c in PARAMS["weighted"]["configs"]} <= outs
    assert not (REPO_ROOT / "dvclive" / "weighted" / ".gitignore").exists()


def _write_plot_data(repo: Path, seed: int) -> None:
    """Every file the top-level plots read, through the stages' own writers, from synthetic results."""
    from lmlab.ensemble.report import write_plot_data as ensemble_data
    from lmlab.ilm.evaluation import write_plot_data as ilm_data
    from lmlab.monotonic.robustness import write_plot_data as monotonic_data
    from lmlab.weighted.params import odds_fractions
    from lmlab.weighted.report import write_plot_data as weighted_data

    rng = random.Random(seed)
    y_true = [i % 2 for i in range(40)]
    configs = PARAMS["weighted"]["configs"]
    full = {"configs": {name: {"config": {"set": c["set"], "variant": c["variant"],
                                          "gamma": 1.0 if c["gamma_key"] != "gamma" else 2.0 + seed},
                               "metrics": {"acceptance_rate": rng.random(), "accuracy": rng.random()},
                               "p_accept": [min(max(0.3 * y + 0.7 * rng.random(), 0.0), 1.0) for y in y_true]}
                        for name, c in configs.items()}}
    odds = {k: tuple(v) for k, v in PARAMS["weighted"]["sets"]["odds"].items()}
    weighted_data(full, odds_fractions(odds), y_true, repo / "reports/plots/weighted")
    classes = ["A", "B", "C"]
    records = [{"gold_class": rng.choice(classes), "predictions": {m: {"gadget_type": rng.choice(classes + [None])}
                                                                  for m in PARAMS["ensemble"]["models"]}}
               for _ in range(30)]
    ensemble_data(records, list(PARAMS["ensemble"]["models"]), repo / "reports/plots/ensemble")
    levels = ["A1", "A2", "B1", "B2", "C1", "all"]
    ilm_data({m: {lvl: {"infill_textonly_ppl": rng.uniform(10, 500),
                        "infill_textonly_ppl_ci": {"low": 5.0, "high": 600.0}} for lvl in levels} for m in levels},
             repo / "reports/plots/ilm")
    monotonic_data({attack: [{"model": arm, "text_index": i, "clean_nll": rng.random(), "attacked_nll": 1 + rng.random()}
                             for arm in ("baseline", "monotonic") for i in range(10)] for attack in ("uat", "hotflip")},
                   repo / "reports/plots/monotonic")
    for paths in _plot_files().values():
        for path in paths:
            if path.endswith(".tsv"):  # a DVCLive curve: step + the metric named after the file
                target = repo / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(f"step\t{target.stem}\n" + "".join(f"{s}\t{rng.random()}\n" for s in (10, 20, 30)))
    missing = [p for paths in _plot_files().values() for p in paths if not (repo / p).exists()]
    assert not missing, f"plot data the writers did not produce: {missing}"


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository copy (dvc.yaml, params, .dvc/ with the offline template) whose HEAD commits one
    set of plot data, with a different set in the workspace."""
    repo = copy_repository(tmp_path_factory.mktemp("plots") / "repo", files=["dvc.yaml", "params.yaml"])
    _write_plot_data(repo, seed=0)
    subprocess.run(["git", "add", "-A", "-f", "reports", "dvclive"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "plots"], cwd=repo, check=True)
    _write_plot_data(repo, seed=1)
    return repo


def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], cwd=repo, env=ENV, capture_output=True, text=True)


@pytest.mark.slow
def test_plots_diff_overlays_both_revisions_in_every_declared_plot(plots_repo):
    """`dvc plots diff HEAD` (HEAD vs workspace): each declared plot is one Vega-Lite spec per chart
    whose data rows carry both revisions, so the two runs are drawn on the same axes."""
    proc = _dvc(plots_repo, "plots", "diff", "HEAD", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    errors = [e for e in out.get("errors", []) if not e["source"].endswith(".png")]  # stage PNGs are not generated here
    assert not errors, errors
    charts = {pid: specs for pid, specs in out["data"].items() if not pid.endswith(".png")}
    for pid in _plot_files():
        ids = [pid] if pid in charts else [c for c in charts if c.startswith(pid.rstrip("/") + "/")]
        assert ids, f"plot '{pid}' rendered nothing"
        for chart in ids:
            (spec,) = charts[chart]
            assert spec["type"] == "vega"
            values = _data_values(spec["content"])
            assert {row["rev"] for row in values} == {"HEAD", "workspace"}, chart
    assert len([c for c in charts if c.startswith("reports/plots/weighted/roc/")]) == len(PARAMS["weighted"]["configs"])
    assert len([c for c in charts if c.startswith("reports/plots/ensemble/confusion/")]) == len(PARAMS["ensemble"]["models"])


def _data_values(spec: dict) -> list[dict]:
    """The inline data rows of a (possibly layered / faceted) Vega-Lite spec."""
    rows: list[dict] = []
    if isinstance(spec.get("data"), dict) and isinstance(spec["data"].get("values"), list):
        rows += spec["data"]["values"]
    for child in spec.get("layer", []) + ([spec["spec"]] if isinstance(spec.get("spec"), dict) else []):
        rows += _data_values(child)
    return rows


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _offline_prefix() -> list[str]:
    """``unshare -n`` (a new network namespace: no network at all) when this user may create one."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


def _drawn(page: Path) -> tuple[int, int]:
    """(vega-embed divs, of those drawn: a <canvas> or a chart <svg> inside) after the page's JS ran."""
    browser = _chromium()
    assert browser is not None
    proc = subprocess.run([*_offline_prefix(), browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert "<body" in dom, proc.stderr[-2000:]
    divs = re.split(r'<div id="', dom)[1:]
    plots = [d for d in divs if "vega-embed" in d[:300]]
    drawn = [d for d in plots if re.search(r"<canvas|<svg[^>]*class=\"marks\"", d)]
    return len(plots), len(drawn)


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs Chromium (Debian: apt-get install chromium; .ci/run installs it)")
def test_plots_show_draws_every_chart_offline_in_a_real_browser(plots_repo, tmp_path):
    """The offline template (`.dvc/config` plots.html_template) inlines Vega: the page draws every
    chart with no network. DVC's own template (CDN scripts) is blank in the same browser."""
    proc = _dvc(plots_repo, "plots", "show", "-o", str(tmp_path / "offline"))
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "offline" / "index.html"
    html = page.read_text()
    assert not re.search(r"<script[^>]+src=\"https?://", html), "the offline page still loads scripts from the network"
    n_plots, n_drawn = _drawn(page)
    shown = json.loads(_dvc(plots_repo, "plots", "show", "--json").stdout)["data"]
    n_vega = sum(spec["type"] == "vega" for specs in shown.values() for spec in specs)
    assert n_plots == n_vega > 10 and n_drawn == n_plots, (n_plots, n_drawn, n_vega)
    if _offline_prefix():  # the control: DVC's default page needs the CDN, so with no network it draws nothing
        default = tmp_path / "default.html"
        (tmp_path / "default_template.html").write_text(
            "<!DOCTYPE html><html><head>{scripts}</head><body>{plot_divs}</body></html>")
        proc = _dvc(plots_repo, "plots", "show", "-o", str(tmp_path / "cdn"),
                    "--html-template", str(tmp_path / "default_template.html"))
        assert proc.returncode == 0, proc.stderr
        shutil.move(tmp_path / "cdn" / "index.html", default)
        assert "cdn.jsdelivr.net" in default.read_text()
        assert _drawn(default)[1] == 0


def test_the_offline_template_is_configured_and_inlines_the_vega_dvc_uses():
    """`.dvc/config` points `plots.html_template` at the committed page, which holds DVC's page
    placeholders and inlines the vega versions DVC's renderer names (scripts/vendor_vega.py --check)."""
    config = (REPO_ROOT / ".dvc" / "config").read_text()
    match = re.search(r"^\s*html_template\s*=\s*(\S+)", config, re.M)
    assert match, "plots.html_template is not set in .dvc/config"
    page = (REPO_ROOT / ".dvc" / match.group(1)).read_text()
    assert "{plot_divs}" in page and "{scripts}" not in page and "cdn.jsdelivr" not in page
    proc = subprocess.run([sys.executable, "scripts/vendor_vega.py", "--check"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
