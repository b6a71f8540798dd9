"""Decision rows: parsing, validation errors, exact proportion sampling, the wl_data stage."""

from __future__ import annotations

import json

import pytest

from lmlab.errors import InputError
from lmlab.weighted.corpus import DecisionSampleParams, make_split
from lmlab.weighted.data import (
    format_prompt,
    parse_decision,
    read_decisions,
    sample_proportion,
    swap_decision,
    write_sets,
)
from lmlab.weighted.params import SetsParams
from tests.weighted.helpers import row, tiny_params, write_jsonl


@pytest.mark.parametrize("text,expected", [
    ("\\boxed{Accept}", "Accept"),
    ("I think \\boxed{ reject }", "Reject"),
    ("first \\boxed{Reject} then \\boxed{Accept}", "Accept"),
    ("Accept.", "Accept"),
    ("Accept or Reject", None),
    ("no idea", None),
    ("", None),
])
def test_parse_decision(text, expected):
    assert parse_decision(text) == expected


def test_swap_and_prompt_format():
    assert swap_decision("so \\boxed{Accept}!") == "so \\boxed{Reject}!"
    assert swap_decision("\\boxed{Reject}") == "\\boxed{Accept}"
    assert format_prompt([("system", "S"), ("user", "U")]) == "System: S\nUser: U\nAssistant:\n"


def test_read_decisions_accepts_sharegpt_aliases(tmp_path):
    r = {"conversations": [{"from": "human", "value": "paper"}, {"from": "gpt", "value": "\\boxed{Accept}"}]}
    (ex,) = read_decisions(write_jsonl(tmp_path / "d.jsonl", [r]))
    assert ex.accept and ex.turns == (("user", "paper"),) and ex.prompt == "User: paper\nAssistant:\n"


def test_unparseable_decision_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [row("a", "\\boxed{Accept}"), row("b", "I would accept it")])
    with pytest.raises(InputError, match=r"d.jsonl:2.*no parseable decision"):
        read_decisions(path)
    bad_role = {"conversations": [{"from": "user", "value": "x"}, {"from": "user", "value": "\\boxed{Accept}"}]}
    with pytest.raises(InputError, match="last turn must be the assistant"):
        read_decisions(write_jsonl(tmp_path / "e.jsonl", [bad_role]))


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    path = tmp_path_factory.mktemp("pool") / "pool.jsonl"
    return read_decisions(write_jsonl(path, make_split("pool", 1000, 0, DecisionSampleParams())))


@pytest.mark.parametrize("fraction,size", [(0.5, 480), (1 / 3, 480), (0.25, 480), (0.125, 480), (1 / 3, 100), (0.125, 90)])
def test_sample_proportion_is_exact(pool, fraction, size):
    rows = sample_proportion(pool, fraction, size, seed=0, name="s")
    assert len(rows) == size
    assert sum(r.accept for r in rows) == round(fraction * size)
    assert len({r.id for r in rows}) == size  # without replacement
    again = sample_proportion(pool, fraction, size, seed=0, name="s")
    assert [r.id for r in rows] == [r.id for r in again]
    assert [r.id for r in rows] != [r.id for r in sample_proportion(pool, fraction, size, seed=1, name="s")]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_fraction_outside_open_interval(pool, fraction):
    with pytest.raises(InputError, match=r"\(0, 1\)"):
        sample_proportion(pool, fraction, 10, seed=0)


def test_pool_too_small(pool):
    with pytest.raises(InputError, match="needs"):
        sample_proportion(pool, 0.125, 990, seed=0, name="big")


def test_write_sets_writes_every_set_at_its_odds_and_a_summary(pool, tmp_path):
    params = SetsParams(seed=3, n_rows=48, odds={"odds_1_1": (1, 1), "odds_1_7": (1, 7)})
    out = tmp_path / "sets"
    summary = write_sets(pool, params, out)
    assert sorted(p.name for p in out.iterdir()) == ["odds_1_1.jsonl", "odds_1_7.jsonl", "summary.json"]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["odds_1_7"] == {"odds": [1, 7], "fraction": 0.125, "n": 48, "n_accept": 6}
    assert summary["odds_1_1"]["n_accept"] == 24
    expected = sample_proportion(pool, 0.125, 48, 3, "odds_1_7")
    lines = (out / "odds_1_7.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [e.raw for e in expected]
    assert lines[0] == json.dumps(expected[0].raw, ensure_ascii=False, sort_keys=True)


def test_write_sets_leaves_the_old_dir_when_a_set_cannot_be_drawn(pool, tmp_path):
    out = tmp_path / "sets"
    write_sets(pool, SetsParams(n_rows=48, odds={"odds_1_1": (1, 1)}), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(InputError, match="needs"):
        write_sets(pool, SetsParams(n_rows=990, odds={"big": (1, 7)}), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".sets.tmp-*"))


def _run_data(tmp_path, params):
    from stages.wl_data import main
    from stages.wl_sample import main as sample_main

    pool, test = tmp_path / "pool.jsonl", tmp_path / "test.jsonl"
    if not pool.exists():
        assert sample_main(["--params", str(params), "--pool", str(pool), "--test", str(test)]) == 0
    out = tmp_path / "sets"
    return main(["--params", str(params), "--pool", str(pool), "--test", str(test), "--out", str(out)]), out


def test_wl_data_stage_writes_the_write_ups_odds_by_default(tmp_path):
    """Write-up 003 verified its sets as "1:2 -> 33%, 1:3 -> 25%, 1:4 -> 20%, 1:8 -> 11%" (accept:reject odds)."""
    params = tiny_params(tmp_path, sample__n_pool=400, sets__n_rows=180)  # 180: every share exact to the percent
    code, out = _run_data(tmp_path, params)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    shares = {name: round(100 * s["n_accept"] / s["n"]) for name, s in summary.items()}
    assert shares == {"odds_1_1": 50, "odds_1_2": 33, "odds_1_3": 25, "odds_1_4": 20, "odds_1_8": 11}
    assert summary["odds_1_2"] == {"odds": [1, 2], "fraction": pytest.approx(1 / 3), "n": 180, "n_accept": 60}
    first = (out / "odds_1_8.jsonl").read_bytes()
    assert _run_data(tmp_path, params)[0] == 0
    assert (out / "odds_1_8.jsonl").read_bytes() == first  # byte-identical rerun


@pytest.mark.parametrize("override,message", [
    ({"sets__odds": {"odds_1_2": [1, 2], "bad": [1, 0]}}, "odds"),
    ({"sets__odds": {"odds_1_2": [1, 2, 3]}}, "key 'weighted.sets.odds': expected dict[str, tuple[int, int]]"),
    ({"configs__odds_1_2-baseline__set": "odds_9_9"}, "unknown set"),
    ({"configs__odds_1_3-accept__set": "odds_1_4"}, "named after set 'odds_1_3' but trains on 'odds_1_4'"),
    ({"configs": {}}, "expected a mapping of names"),
    ({"configs__odds_1_2-baseline__variant": "both"}, "variant"),
])
def test_wl_data_bad_params_fail_before_training(tmp_path, override, message, caplog):
    code, out = _run_data(tmp_path, tiny_params(tmp_path, **override))
    assert code == 2 and not out.exists()
    assert message in caplog.text


def test_wl_data_rejects_rows_without_decision(tmp_path):
    params = tiny_params(tmp_path)
    _run_data(tmp_path, params)
    lines = (tmp_path / "pool.jsonl").read_text().splitlines()
    bad = json.loads(lines[3])
    bad["conversations"][-1]["value"] = "Looks fine to me."
    lines[3] = json.dumps(bad)
    (tmp_path / "pool.jsonl").write_text("\n".join(lines) + "\n")
    code, out = _run_data(tmp_path, params)
    assert code == 2 and not out.exists()
