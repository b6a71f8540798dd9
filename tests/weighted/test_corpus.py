"""Embedded decision sample: deterministic, balanced test set, learnable-but-noisy evidence."""

from __future__ import annotations

import json

import pytest

from lmlab.weighted.corpus import DecisionSampleParams, make_split
from lmlab.weighted.data import parse_boxed

PARAMS = DecisionSampleParams()


def _accepts(rows):
    return [parse_boxed(r["conversations"][-1]["value"]) == "Accept" for r in rows]


def test_same_seed_same_rows_other_seed_differs():
    a = make_split("pool", 50, 0, PARAMS)
    assert json.dumps(a) == json.dumps(make_split("pool", 50, 0, PARAMS))
    assert json.dumps(a) != json.dumps(make_split("pool", 50, 1, PARAMS))


def test_test_split_is_exactly_balanced_and_conversation_shaped():
    rows = make_split("test", 60, 3, PARAMS, balanced=True)
    assert sum(_accepts(rows)) == 30
    for r in rows:
        assert [t["from"] for t in r["conversations"]] == ["system", "user", "assistant"]
        assert r["conversations"][-1]["value"] in ("\\boxed{Accept}", "\\boxed{Reject}")
        assert "Paper:" in r["conversations"][1]["value"]


def test_evidence_is_informative_but_not_separable():
    rows = make_split("pool", 1500, 0, PARAMS)
    share = []
    for r in rows:
        text = r["conversations"][1]["value"]
        s, w = text.count("Strength:"), text.count("Weakness:")
        share.append(s / max(1, s + w))
    acc = _accepts(rows)
    mean_acc = sum(s for s, a in zip(share, acc) if a) / sum(acc)
    mean_rej = sum(s for s, a in zip(share, acc) if not a) / (len(acc) - sum(acc))
    assert mean_acc - mean_rej > 0.3  # learnable
    majority_rule = sum((s > 0.5) == a for s, a in zip(share, acc)) / len(acc)
    assert 0.65 < majority_rule < 0.95  # but noisy
    assert 0.4 < sum(acc) / len(acc) < 0.6


@pytest.mark.parametrize("field,value", [("n_test", 7), ("evidence", 0.0), ("label_noise", 0.6), ("min_remarks", 0)])
def test_bad_sample_params(field, value):
    with pytest.raises(ValueError, match=field):
        DecisionSampleParams(**{field: value})


def test_stage_writes_pool_and_test(tmp_path):
    from stages.wl_sample import main
    from tests.weighted.helpers import tiny_params

    params = tiny_params(tmp_path)
    pool, test = tmp_path / "pool.jsonl", tmp_path / "test.jsonl"
    assert main(["--params", str(params), "--pool", str(pool), "--test", str(test)]) == 0
    assert len(pool.read_text().splitlines()) == 160
    assert sum(_accepts([json.loads(x) for x in test.read_text().splitlines()])) == 20
    bad = tiny_params(tmp_path, sample__n_test=5)
    assert main(["--params", str(bad), "--pool", str(tmp_path / "p2"), "--test", str(tmp_path / "t2")]) == 2
    assert not (tmp_path / "p2").exists()
