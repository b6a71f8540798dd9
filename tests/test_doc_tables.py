"""scripts/doc_tables.py: result tables in README.md and docs/*.md match the committed metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, load_script

doc_tables = load_script("doc_tables")

ILM = {
    "ppl": {"A1": {"A1": 34.33, "B1": 735.35}, "all": {"A1": 115.0, "B1": 222.32}},
    "ppl_ci": {"A1": {"A1": {"low": 30.01, "high": 38.9}}},
    "specialization_gain": {"A1": 0.7014, "B1": 0.5419},
    "specialization_gain_ci": {"A1": {"low": 0.66, "high": 0.73}},
}
WEIGHTED = {"gamma": 4.0, "gold_acceptance_rate": 0.5,
            "baseline": {"accuracy": 0.79, "f1": 0.78, "acceptance_rate": 0.45, "accuracy_ci_low": 0.74,
                         "accuracy_ci_high": 0.84},
            "frac_1_2-accept": {"accuracy": 0.81, "f1": 0.83, "acceptance_rate": 0.61}}

PPL_MARKER = '<!-- metrics-table: m/ilm.json ppl digits=1 ci=yes corner="model \\ test level" -->'


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "ilm.json").write_text(json.dumps(ILM))
    (tmp_path / "m" / "weighted.json").write_text(json.dumps(WEIGHTED))
    (tmp_path / "docs").mkdir()
    return tmp_path


def _doc(root: Path, body: str, name: str = "docs/page.md") -> Path:
    path = root / name
    path.write_text(f"# Page\n\nSome prose.\n\n{body}\n\nMore prose.\n")
    return path


def _check(root: Path, capsys) -> tuple[int, str]:
    code = doc_tables.main(["--check", "--root", str(root)])
    return code, capsys.readouterr().err


def test_matrix_with_stored_intervals_only(repo: Path) -> None:
    lines = doc_tables.render(PPL_MARKER.split("metrics-table:")[1].rsplit("-->", 1)[0], repo)
    assert lines == [
        "| model \\ test level | A1 | B1 |",
        "|---|---|---|",
        "| A1 | 34.3 [30.0, 38.9] | 735.4 |",  # B1 has no stored interval: none shown, none invented
        "| all | 115.0 | 222.3 |",
    ]


def test_list_with_interval_column_and_custom_headers(repo: Path) -> None:
    lines = doc_tables.render('m/ilm.json specialization_gain ci=yes headers="level,gain,95% CI"', repo)
    assert lines == ["| level | gain | 95% CI |", "|---|---|---|", "| A1 | 0.701 | [0.660, 0.730] |",
                     "| B1 | 0.542 | — |"]


def test_top_level_matrix_skips_scalars_and_interval_keys(repo: Path) -> None:
    lines = doc_tables.render("m/weighted.json . cols=accuracy,acceptance_rate ci=yes digits=2 corner=config", repo)
    assert lines == ["| config | accuracy | acceptance_rate |", "|---|---|---|",
                     "| baseline | 0.79 [0.74, 0.84] | 0.45 |", "| frac_1_2-accept | 0.81 | 0.61 |"]
    default_cols = doc_tables.render("m/weighted.json . rows=baseline", repo)[0]
    assert default_cols == "|  | accuracy | f1 | acceptance_rate |"  # no *_ci_low / *_ci_high columns
    scalars = doc_tables.render("m/weighted.json . rows=gamma,gold_acceptance_rate digits=1", repo)
    assert scalars[2:] == ["| gamma | 4.0 |", "| gold_acceptance_rate | 0.5 |"]


def test_check_names_the_line_that_differs_and_write_fixes_it(repo: Path, capsys) -> None:
    table = "\n".join(doc_tables.render('m/ilm.json specialization_gain ci=yes', repo))
    page = _doc(repo, f"<!-- metrics-table: m/ilm.json specialization_gain ci=yes -->\n{table}\n<!-- /metrics-table -->")
    assert _check(repo, capsys)[0] == 0
    # a hand edit of one number (or a re-run that changed the metrics) is caught, with its line
    page.write_text(page.read_text().replace("| B1 | 0.542 |", "| B1 | 0.550 |"))
    code, err = _check(repo, capsys)
    line = page.read_text().splitlines().index("| B1 | 0.550 | — |") + 1
    assert code == 1 and f"docs/page.md:{line}:" in err and "| B1 | 0.542 | — |" in err
    assert doc_tables.main(["--write", "--root", str(repo)]) == 0
    assert "| B1 | 0.542 | — |" in page.read_text() and page.read_text().startswith("# Page\n\nSome prose.")
    assert page.read_text().endswith("<!-- /metrics-table -->\n\nMore prose.\n")
    assert _check(repo, capsys)[0] == 0
    # new metrics: the committed table is now stale
    (repo / "m" / "ilm.json").write_text(json.dumps({**ILM, "specialization_gain": {"A1": 0.8, "B1": 0.5419}}))
    code, err = _check(repo, capsys)
    assert code == 1 and "| A1 | 0.800 | [0.660, 0.730] |" in err


def test_readme_is_covered_and_empty_markers_are_filled(repo: Path, capsys) -> None:
    readme = _doc(repo, f"{PPL_MARKER}\n<!-- /metrics-table -->", name="README.md")
    code, err = _check(repo, capsys)
    assert code == 1 and "README.md:6:" in err
    assert doc_tables.main(["--write", "--root", str(repo)]) == 0
    assert "| A1 | 34.3 [30.0, 38.9] | 735.4 |" in readme.read_text()
    assert _check(repo, capsys)[0] == 0


@pytest.mark.parametrize(("body", "message"), [
    ("<!-- metrics-table: m/ilm.json ppl -->\n| x |", "no closing"),
    ("<!-- /metrics-table -->", "closing marker without an opening one"),
    ("<!-- metrics-table: m/nope.json ppl -->\n<!-- /metrics-table -->", "cannot read m/nope.json"),
    ("<!-- metrics-table: m/ilm.json ppx -->\n<!-- /metrics-table -->", "no dict at 'ppx'"),
    ("<!-- metrics-table: m/ilm.json ppl rows=A1,B2 -->\n<!-- /metrics-table -->", "has no ppl.B2"),
    ("<!-- metrics-table: m/ilm.json ppl color=red -->\n<!-- /metrics-table -->", "unknown option"),
    ("<!-- metrics-table: m/ilm.json specialization_gain headers=a -->\n<!-- /metrics-table -->", "1 names for 2"),
])
def test_broken_markers_are_errors_with_file_and_line(repo: Path, capsys, body: str, message: str) -> None:
    _doc(repo, body)
    code, err = _check(repo, capsys)
    assert code == 2 and "docs/page.md:5:" in err and message in err


def test_committed_docs_match_the_committed_metrics(capsys) -> None:
    """README.md and docs/*.md: every generated table equals what the metrics files say now."""
    documents = doc_tables.documents(REPO_ROOT)
    assert REPO_ROOT / "docs" / "ilm_models.md" in documents and REPO_ROOT / "README.md" in documents
    assert "<!-- metrics-table: reports/metrics/ilm.json ppl" in (REPO_ROOT / "docs" / "ilm_models.md").read_text()
    code, err = _check(REPO_ROOT, capsys)
    assert code == 0, err
