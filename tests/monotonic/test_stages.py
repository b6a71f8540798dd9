"""Monotonic-family stages, run in-process with a tiny params file; bad input exits 2 with no outputs."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import write_params
from tests.monotonic.helpers import tiny_monotonic_params


def test_split_stage_rejects_an_empty_corpus(tmp_path):
    from stages import mono_split

    (tmp_path / "empty.txt").write_text("\n\n")
    tiny = tiny_monotonic_params(str(tmp_path / "empty.txt"))
    params = write_params(tmp_path / "params.yaml", {"monotonic": tiny})
    out = tmp_path / "splits"
    assert mono_split.main(["--params", str(params), "--out", str(out)]) == 2
    assert not out.exists()


@pytest.mark.slow
def test_family_stages_in_process(tmp_path):
    from stages import mono_attack, mono_eval, mono_pretrain, mono_sample, mono_split, mono_train, tokenizer

    text, splits, models = tmp_path / "text.txt", tmp_path / "splits", tmp_path / "models"
    monotonic = tiny_monotonic_params(str(text))
    monotonic["arms"]["monotonic"]["training"]["epochs"] = 0.5  # recovery length in epochs (max_steps ignored)
    params = str(write_params(tmp_path / "params.yaml", {"monotonic": monotonic}))
    p = ["--params", params]
    assert mono_sample.main([*p, "--out", str(text)]) == 0
    assert mono_split.main([*p, "--out", str(splits)]) == 0
    assert tokenizer.main([*p, "--section", "monotonic", "--corpus", str(splits / "train.jsonl"),
                                 "--out", str(models / "tok")]) == 0
    assert mono_pretrain.main([*p, "--splits", str(splits), "--tokenizer", str(models / "tok"), "--out",
                                    str(models / "pre"), "--checkpoints", str(tmp_path / "ck/pre"),
                                    "--live", str(tmp_path / "live/pre")]) == 0
    for arm in ("baseline", "monotonic"):
        assert mono_train.main([*p, "--arm", arm, "--base", str(models / "pre"), "--splits", str(splits),
                                    "--out", str(models / arm), "--checkpoints", str(tmp_path / f"ck/{arm}"),
                                    "--live", str(tmp_path / f"live/{arm}")]) == 0
    marker = json.loads((models / "monotonic/monotonic.json").read_text())
    assert marker["constrained_parameters"] == 2 * 32 * 64 and marker["provably_monotone_ffn"]
    assert marker["min_weight_after_training"] >= 0 and not (models / "baseline/monotonic.json").exists()
    assert (tmp_path / "live/monotonic/metrics.json").exists()
    assert json.loads((models / "monotonic/train_metrics.json").read_text())["epoch"] == pytest.approx(0.5, abs=0.05)
    assert json.loads((models / "baseline/train_metrics.json").read_text())["epoch"] < 0.5  # 10 steps
    ppl = tmp_path / "ppl.json"
    pair = ["--baseline", str(models / "baseline"), "--monotonic", str(models / "monotonic")]
    assert mono_eval.main([*p, *pair, "--pretrained", str(models / "pre"), "--test", str(splits / "test.jsonl"),
                           "--out", str(ppl)]) == 0
    perplexity = json.loads(ppl.read_text())["ppl"]
    assert set(perplexity) == {"baseline", "monotonic", "pretrained", "monotonic_before_recovery"}
    assert perplexity["monotonic_before_recovery"] != perplexity["pretrained"]  # the constraint changed the model
    outs = {"--logs": tmp_path / "logs", "--metrics": tmp_path / "monotonic.json", "--plot": tmp_path / "plot.png",
            "--writeup": tmp_path / "writeup/monotonic.json", "--detail": tmp_path / "attack_metrics.json"}
    args = [*p, *pair, "--splits", str(splits), "--perplexity", str(ppl)] + [str(x) for kv in outs.items() for x in kv]
    assert mono_attack.main(args) == 0
    metrics = json.loads(outs["--metrics"].read_text())
    for model in ("baseline", "monotonic"):
        assert metrics["ppl"][model] > 1
        assert math.isfinite(metrics["uat"][model]["ppl_increase_pct"])
        assert 0 <= metrics["hotflip"][model]["success_rate"] <= 1
    assert "ppl_gap_pct" in metrics and "attack_reduction_pct" in metrics and "attack_change_pp" not in metrics
    detail = json.loads(outs["--detail"].read_text())  # every aggregate; the metrics file is its headline subset
    assert "attack_change_pp" in detail and detail["hotflip"]["baseline"]["n"] == 12
    assert all(detail[k] == v for k, v in metrics.items() if k not in ("uat", "hotflip"))
    assert set(metrics["hotflip"]["baseline"]) == {"success_rate", "success_rate_ci_low", "success_rate_ci_high"}
    assert metrics["ppl"]["monotonic_before_recovery"] == perplexity["monotonic_before_recovery"]
    assert set(metrics["criteria"]) >= {"ppl_gap_lt_15", "attack_reduction_gt_40", "minimal", "strong"}
    assert isinstance(metrics["attack_reduction_meaningful"], bool)
    rows = json.loads(outs["--writeup"].read_text())["rows"]
    assert any(r["quantity"].startswith("perplexity of the monotone model right after") and
               r["lmlab"] == pytest.approx(perplexity["monotonic_before_recovery"]) for r in rows)
    rows = [json.loads(line) for line in (tmp_path / "logs/hotflip.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 12 and all(f["position"] < 8 for r in rows for f in r["flips"])
    assert outs["--plot"].stat().st_size > 0
    # a collapsed monotone arm (the 135M case: gap ~74,000 %): the stage withholds the reduction
    collapsed = {**json.loads(ppl.read_text()), "ppl_gap_pct": 74_000.0}
    collapsed["ppl"]["monotonic"] = 740.0 * collapsed["ppl"]["baseline"]
    (tmp_path / "collapsed.json").write_text(json.dumps(collapsed))
    bad = [*args[:args.index("--perplexity") + 1], str(tmp_path / "collapsed.json"), *args[args.index("--perplexity") + 2:]]
    assert mono_attack.main(bad) == 0
    metrics = json.loads(outs["--metrics"].read_text())
    assert metrics["attack_reduction_meaningful"] is False and metrics["attack_reduction_pct"] is None
    assert json.loads(outs["--detail"].read_text())["attack_change_pp"] is None and not any(metrics["criteria"].values())
    rows = {r["quantity"]: r for r in json.loads(outs["--writeup"].read_text())["rows"]}
    assert rows["HotFlip attack reduction (%, relative)"]["lmlab"].startswith("not meaningful")
    # a corpus too short for the HotFlip context/target split: clear error, no half-written outputs
    monotonic["attack"]["hotflip"]["context_tokens"] = 400
    params = str(write_params(tmp_path / "params_bad.yaml", {"monotonic": monotonic}))
    for path in outs.values():
        path.unlink() if path.is_file() else None
    assert mono_attack.main(["--params", params, *args[2:]]) == 2
    assert not outs["--metrics"].exists() and not outs["--plot"].exists() and not outs["--writeup"].exists()
