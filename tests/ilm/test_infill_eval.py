"""Infill evaluation: CSV reading, masking, skips, the report, and the ilm_infill_eval stage."""

from __future__ import annotations

import importlib.util
import json
import random

import pytest

from lmlab.errors import InputError
from lmlab.ilm.format import MaskType
from lmlab.ilm.infill_eval import (
    InfillEvalParams,
    _diagnostics,
    build_items,
    mask_text,
    read_eval_texts,
    run_infill_eval,
)
from lmlab.ilm.infill_metrics import ALL_METRIC_NAMES, METRIC_NAMES
from tests.conftest import write_params
from tests.ilm.infill_helpers import ILM_TEXTS, make_ilm_dir

LEVELS = ["A1", "A2", "B1", "B2", "C1"]


def _write_csv(path, rows, header="id,cefr,l1,text"):
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header.split(","))
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def eval_csv(tmp_path_factory):
    rows = [[f"t{i}", LEVELS[i % 5], "xx", text] for i, text in enumerate(ILM_TEXTS * 2)] + [["short", "A1", "xx", "Hi"]]
    return _write_csv(tmp_path_factory.mktemp("csv") / "test.meta.csv", rows)


@pytest.fixture(scope="module")
def ilm_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {name: make_ilm_dir(root / name, seed=i) for i, name in enumerate(["A1", "all"])}


def test_read_eval_texts_errors(tmp_path, eval_csv):
    assert len(read_eval_texts(eval_csv)) == 11
    with pytest.raises(InputError, match="not found"):
        read_eval_texts(_write_csv(tmp_path / "a.csv", [["1", "A1", "hello"]], "id,cefr,body"))
    with pytest.raises(InputError, match="empty test split"):
        read_eval_texts(_write_csv(tmp_path / "b.csv", [], "id,cefr,l1,text"))
    with pytest.raises(InputError, match="does not exist"):
        read_eval_texts(tmp_path / "missing.csv")


def test_human_tokens_masks_whole_words_left_to_right():
    text = "I don't like well-known cafés, really."
    spans = mask_text(text, "human-tokens", 3, 3, random.Random(1))
    words = {"I", "don't", "like", "well-known", "cafés", "really"}
    assert [text[o:o + n] for _, o, n in spans] and all(text[o:o + n] in words for _, o, n in spans)
    assert [o for _, o, _ in spans] == sorted(o for _, o, _ in spans)
    assert {t for t, _, _ in spans} == {int(MaskType.WORD)}
    assert mask_text("Hi", "human-tokens", 2, 3, random.Random(0)) is None


def test_random_masking_spans_are_separated_ngrams():
    text = " ".join(f"w{i}" for i in range(12))
    for seed in range(30):
        spans = mask_text(text, "random", 3, 3, random.Random(seed))
        assert len(spans) == 3
        for (_, o1, n1), (_, o2, _) in zip(spans, spans[1:]):
            assert text[o1 + n1:o2].strip()  # at least one unmasked word between spans
        for kind, o, n in spans:
            n_words = len(text[o:o + n].split())
            assert 1 <= n_words <= 3 and kind == int(MaskType.WORD if n_words == 1 else MaskType.NGRAM)
    assert mask_text("a b c", "random", 3, 3, random.Random(0)) is None  # needs 3 words + 2 gaps


def test_build_items_counts_skips_and_is_seeded(eval_csv):
    texts = read_eval_texts(eval_csv)
    params = InfillEvalParams(test_csv=str(eval_csv), models={"x": "ilm:x"}, n_masks=2, samples_per_text=2, limit=0)
    items, counts = build_items(texts, params)
    assert counts["too_few_words"] == 1 and counts["texts_selected"] == 11
    assert counts["items"] == len(items) == 20 - counts.get("duplicate_sample", 0)
    assert build_items(texts, params)[0] == items
    limited, counts = build_items(texts, InfillEvalParams(test_csv="x", models={"x": "ilm:x"}, limit=1, max_chars=20))
    # limit is per CEFR level: one text of each level
    assert counts["texts_selected"] == 5 and sorted(item.cefr for item in limited) == LEVELS
    assert all(len(item.doc) <= 20 for item in limited) and counts["truncated_texts"] >= 1


def test_params_validation():
    with pytest.raises(ValueError, match="models"):
        InfillEvalParams(test_csv="x")
    with pytest.raises(ValueError, match="models: a: bad model spec"):
        InfillEvalParams(test_csv="x", models={"a": "foo"})
    with pytest.raises(ValueError, match="n_masks"):
        InfillEvalParams(test_csv="x", models={"a": "ilm:x"}, n_masks=0)
    with pytest.raises(ValueError, match="unterminated"):
        InfillEvalParams(test_csv="x", models={"a": "ilm:x"}, unterminated="ignore")  # type: ignore[arg-type]


def test_run_infill_eval_report_shape(eval_csv, ilm_dirs):
    params = InfillEvalParams(test_csv=str(eval_csv), models={k: f"ilm:{v}" for k, v in ilm_dirs.items()},
                              max_new_tokens=4, device="cpu", threads=1)
    report = run_infill_eval(params)
    assert set(report["results"]["overall"]) == {"A1", "all"}
    assert set(report["results"]["by_cefr"]["A1"]) == set(LEVELS)
    assert report["config"]["counts"]["items"] == 11  # 11 texts, 1 word each (even "Hi")
    for model in ("A1", "all"):
        assert report["results"]["overall"][model]["n"] == 11
        assert sum(v["n"] for v in report["results"]["by_cefr"][model].values()) == 11
    assert len(report["predictions"]) == 2 * report["config"]["counts"]["items"]


def test_unterminated_answers_are_scored_as_generated_or_dropped(eval_csv, ilm_dirs):
    """The untrained fixtures never write <|endofinfill|> within 4 tokens: every answer is open."""
    models = {"all": f"ilm:{ilm_dirs['all']}"}
    common = dict(test_csv=str(eval_csv), models=models, max_new_tokens=4, device="cpu", threads=1)
    kept = run_infill_eval(InfillEvalParams(**common))
    dropped = run_infill_eval(InfillEvalParams(**common, unterminated="drop"))
    k, d = kept["results"]["overall"]["all"], dropped["results"]["overall"]["all"]
    assert k["n_unterminated"] == k["n"] == 11 and d["n_unterminated"] == 0
    assert d["n_empty"] == 11 and d["unigram_recall"] == 0.0
    rows = [r for r in kept["predictions"] if any(p.strip() for p in r["predictions"])]
    assert rows and all(r["unterminated"] == [True] for r in kept["predictions"])
    assert k["n_empty"] < 11  # what was generated is scored, not replaced by ""


def _stage_main():
    spec = importlib.util.spec_from_file_location("ilm_infill_eval", "stages/ilm_infill_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _params(tmp_path, csv, models=None):
    overrides = {"seed": 0, "ilm.infill_eval.test_csv": str(csv), "ilm.infill_eval.max_new_tokens": 4,
                 "ilm.infill_eval.device": "cpu", "ilm.infill_eval.threads": 1}
    if models:
        overrides["ilm.infill_eval.models"] = {k: f"ilm:{v}" for k, v in models.items()}
    return write_params(tmp_path / "params.yaml", overrides, sections=("seed", "ilm.infill_eval"))


def test_stage_smoke_and_contract_keys(tmp_path, eval_csv, ilm_dirs, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    main = _stage_main()
    outs = [tmp_path / "r" / "infill_eval.json", tmp_path / "m" / "ilm_infill.json", tmp_path / "r" / "p.jsonl"]
    argv = ["--params", str(_params(tmp_path, eval_csv)), *[f"--model={k}=ilm:{v}" for k, v in ilm_dirs.items()],
            "--out", str(outs[0]), "--metrics", str(outs[1]),
            "--predictions", str(outs[2])]
    assert main(argv) == 0
    metrics = json.loads(outs[1].read_text())
    assert set(metrics) == {"A1", "all"}
    report = json.loads(outs[0].read_text())
    for model, levels in metrics.items():  # headline: each model over all levels; the level grid is in the report
        assert set(levels) == {"all"} and set(levels["all"]) == {*METRIC_NAMES, "n"}
        assert levels["all"] == {k: report["results"]["overall"][model][k] for k in (*METRIC_NAMES, "n")}
        assert set(report["results"]["by_cefr"][model]) <= {*LEVELS, "all"}
    assert set(report) == {"config", "results", "diagnostics"} and set(report["results"]) == {"overall", "by_cefr"}
    assert set(report["diagnostics"]) == {"A1", "all", "identical_predictions", "unigram_f1_difference"}
    assert set(report["diagnostics"]["A1"]) == {"distinct_predictions", "most_common_prediction"}
    assert set(report["diagnostics"]["identical_predictions"]) == {"A1|all"}
    # the report keeps the word-level scores and the counts that the metrics file leaves out
    assert set(report["results"]["overall"]["A1"]) == {*ALL_METRIC_NAMES, "n", "n_unterminated", "n_empty"}
    first = outs[1].read_bytes()
    assert main(argv) == 0 and outs[1].read_bytes() == first  # deterministic


def test_stage_bad_inputs_leave_no_outputs(tmp_path, ilm_dirs, tiny_model_dir, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    main = _stage_main()
    outs = [tmp_path / "e.json", tmp_path / "m.json", tmp_path / "p.jsonl"]
    flags = ["--out", str(outs[0]), "--metrics", str(outs[1]), "--predictions", str(outs[2])]
    bad_csv = _write_csv(tmp_path / "bad.csv", [["1", "A1", "a text"]], "id,cefr,body")
    assert main(["--params", str(_params(tmp_path, bad_csv, ilm_dirs)), *flags]) == 2
    good_csv = _write_csv(tmp_path / "good.csv", [["1", "A1", "xx", "I like music."]])
    assert main(["--params", str(_params(tmp_path, good_csv, {"plain": tiny_model_dir})), *flags]) == 2
    assert not any(p.exists() for p in outs)


def test_diagnostics_say_whether_two_models_can_be_told_apart():
    preds = {"good": [["cat"]] * 20, "bad": [["."]] * 20, "same": [["."]] * 20}
    f1 = {"good": [1.0] * 20, "bad": [0.0] * 20, "same": [0.0] * 20}
    d = _diagnostics(preds, f1, seed=0)
    assert d["good"] == {"distinct_predictions": 1, "most_common_prediction": {"text": "cat", "count": 20}}
    assert d["identical_predictions"] == {"good|bad": 0.0, "good|same": 0.0, "bad|same": 1.0}
    diff = d["unigram_f1_difference"]
    assert diff["good|bad"]["estimate"] == 1.0 and diff["good|bad"]["separated"]
    assert diff["bad|same"]["estimate"] == 0.0 and not diff["bad|same"]["separated"]
    noisy = {"a": [1.0, 0.0] * 10, "b": [0.0, 1.0] * 10}
    assert not _diagnostics({"a": [["x"]] * 20, "b": [["y"]] * 20}, noisy, seed=0)["unigram_f1_difference"]["a|b"][
        "separated"]
