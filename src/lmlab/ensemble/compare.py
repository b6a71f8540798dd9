"""Run the Ensemble comparison: generate with every trained model, judge, and build the report.

Each model directory (written by ``ens_train@<model>``) holds the weights, its tokenizer,
``params.json`` (the resolved :class:`~lmlab.ensemble.training.SftModelParams`) and
``ensemble_model.json`` (its kind). Prompts are encoded exactly as in training.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lmlab.device import limit_cpu_threads, select_runtime
from lmlab.ensemble.data import encode_chat_prompt, encode_prompt
from lmlab.ensemble.labels import extract_fields
from lmlab.ensemble.params import CompareParams  # moved there (no torch) for the params check; re-exported
from lmlab.ensemble.report import build_records, summarize
from lmlab.errors import InputError
from lmlab.generation import generate_continuations
from lmlab.modeling import load_model
from lmlab.tokenization import load_tokenizer

logger = logging.getLogger(__name__)

__all__ = ["CompareParams", "predict_with_model", "training_info", "calibrate_explanation_threshold", "run_judge", "compare_models"]


def predict_with_model(model_dir: Path, rows: Sequence[Mapping[str, Any]], params: CompareParams) -> list[str]:
    """Greedy continuations of one trained model on ``rows`` (prompts encoded as in training)."""
    info_path = model_dir / "ensemble_model.json"
    if not info_path.exists():
        raise InputError("not a trained ensemble model directory (no ensemble_model.json).", path=model_dir,
                         hint="run `dvc repro ens_train` first; every key of ensemble.models needs its "
                              "`models/ensemble/<key>` dependency listed under ens_compare in dvc.yaml.")
    info = json.loads(info_path.read_text())
    train_params = json.loads((model_dir / "params.json").read_text())
    kind: Literal["causal", "seq2seq"] = info["kind"]
    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, kind)
    max_source = int(train_params["max_source_length"])
    if kind == "seq2seq":
        prompts = [encode_prompt(tokenizer, r["instruction"], r["input"], max_source - 1) + [tokenizer.eos_token_id]
                   for r in rows]
    else:  # in the tokenizer's chat template when training used it (ensemble_model.json says so)
        encode = encode_chat_prompt if info.get("chat_template") else encode_prompt
        prompts = [encode(tokenizer, r["instruction"], r["input"], max_source) for r in rows]
    runtime = select_runtime()
    limit_cpu_threads(params.cpu_threads, runtime)
    return generate_continuations(model, tokenizer, prompts, kind, params.max_new_tokens, params.batch_size,
                                  runtime.device)


def training_info(model_dir: Path) -> dict[str, Any]:
    """Kind, base model and final losses of a trained model (its ``ensemble_model.json``)."""
    info = json.loads((model_dir / "ensemble_model.json").read_text())
    keys = ("kind", "base", "train_loss", "eval_loss", "global_step")
    return {k: info[k] for k in keys if k in info}


def calibrate_explanation_threshold(encoder: Any, train_rows: Sequence[Mapping[str, Any]], n_rows: int, seed: int) -> float:
    """Youden-J threshold on cosines of gold explanation pairs (same class vs different class)."""
    from lmlab.ensemble.judge import calibrate_threshold

    rows = [r for r in train_rows if extract_fields(r["output"])["explanation"]]
    rows = random.Random(f"calibrate:{seed}").sample(rows, min(n_rows, len(rows)))
    texts = [extract_fields(r["output"])["explanation"] or "" for r in rows]
    classes = [r.get("gold_class") for r in rows]
    emb = encoder.encode(texts)
    sims = emb @ emb.T
    same, diff = [], []
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            (same if classes[i] == classes[j] else diff).append(float(sims[i, j]))
    threshold = calibrate_threshold(same, diff)
    logger.info("explanation threshold %.3f (%d same-class, %d different-class pairs)", threshold, len(same), len(diff))
    return threshold


def run_judge(records: list[dict[str, Any]], models: Sequence[str], train_rows: Sequence[Mapping[str, Any]],
              params: CompareParams, seed: int) -> dict[str, Any]:
    """Add a ``judge`` entry to every record; return the judge summary."""
    from lmlab.ensemble.judge import MiniLMEncoder, judge_example

    encoder = MiniLMEncoder()
    threshold = calibrate_explanation_threshold(encoder, train_rows, params.calibration_rows, seed)
    for rec in records:
        preds = [rec["predictions"][m] for m in models]
        result = judge_example([p["gadget_type_raw"] for p in preds], [p["gadget_type"] for p in preds],
                               [p["explanation"] for p in preds], encoder, params.label_cosine_threshold,
                               threshold, names=models)
        rec["judge"] = {"verdict": result.verdict, "label_agreement": result.label_agreement,
                        "explanation_cosine": result.explanation_cosine}
    verdicts = Counter(r["judge"]["verdict"] for r in records)
    gold_cos = {}
    for m in models:
        pairs = [(extract_fields(r["gold_output"])["explanation"], r["predictions"][m]["explanation"]) for r in records]
        pairs = [(g, p) for g, p in pairs if g and p]
        sims = [float(np.dot(*encoder.encode([g, p]))) for g, p in pairs]
        gold_cos[m] = float(np.mean(sims)) if sims else 0.0
    n = len(records)
    return {
        "method": "minilm",
        "explanation_threshold": threshold,
        "label_cosine_threshold": params.label_cosine_threshold,
        "counts": {v: verdicts.get(v, 0) for v in ("FULL", "PARTIAL", "DISAGREEMENT", "INVALID")},
        "rates": {v: verdicts.get(v, 0) / n if n else 0.0 for v in ("FULL", "PARTIAL", "DISAGREEMENT", "INVALID")},
        "explanation_cosine_vs_gold": gold_cos,
    }


def compare_models(
    model_dirs: Mapping[str, Path],
    test_rows: Sequence[Mapping[str, Any]],
    train_rows: Sequence[Mapping[str, Any]],
    params: CompareParams,
    judge: Literal["minilm", "none"],
    seed: int,
) -> dict[str, Any]:
    """Generate with every model, build records + summary (+ judge). Returns ``{"summary", "records"}``.

    ``seed`` seeds the judge's calibration sample and the summary's bootstrap intervals.
    """
    if not model_dirs:
        raise InputError("no models to compare.", key="ensemble.models", hint="add at least one model entry.")
    predictions = {name: predict_with_model(path, test_rows, params) for name, path in model_dirs.items()}
    models = list(predictions)
    records = build_records(test_rows, predictions, params.priority, params.fuzzy_threshold,
                            writeup_normalizer=params.writeup_normalizer)
    summary = summarize(records, models, seed=seed,  # seeds the bootstrap intervals
                        length_bins=params.length_bins, writeup_normalizer=params.writeup_normalizer)
    summary["training"] = {name: training_info(path) for name, path in model_dirs.items()}
    summary["priority"] = [m for m in params.priority if m in models] + [m for m in models if m not in params.priority]
    if judge == "minilm":
        summary["judge"] = run_judge(records, models, train_rows, params, seed)
    return {"summary": summary, "records": records}
