"""Write-up 002 (two-model ensemble) beside lmlab: its reported numbers and lmlab's from ``ens_compare``.

The write-up fine-tunes pretrained FLAN-T5-small (seq2seq) and DistilGPT2 (causal) on the first
100 rows of the lab's 492-row gadget file, 90 train / 10 validation, and compares them on the 10
validation rows with normalised-string agreement. lmlab's values come from the same quantities
computed by :mod:`lmlab.ensemble.string_agreement` and :mod:`lmlab.ensemble.report` on whatever
the pipeline ran (the embedded default: tiny randomly initialised models on the synthetic sample,
stratified test split), so every row's note says which protocol produced lmlab's number. The
write-up's seq2seq figures are set beside lmlab's first seq2seq model, its causal figures beside
the first causal model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lmlab.writeup import WriteupRow

__all__ = [
    "WRITEUP",
    "TRAIN_ROWS",
    "VALIDATION_ROWS",
    "FULL_AGREEMENTS",
    "FULL_AGREEMENT_RATE",
    "DISAGREEMENT_RATE",
    "FORMAT_ACCURACY",
    "TRAIN_LOSS",
    "EXAMPLE0_UNIQUE_TYPES",
    "PRODUCTION_FORMAT_ACCURACY",
    "writeup_rows",
]

WRITEUP = "002"

# "STEP 2: Loading and preparing data": "✓ Subsampled to 100 examples / ✓ Train: 90 | Validation: 10"
TRAIN_ROWS = 90
VALIDATION_ROWS = 10

# "STEP 7: Saving comparison report", SUMMARY: "Total examples: 10 / Full agreement: 1 (10.0%) /
# Disagreements: 9 (90.0%)"; "Format accuracy by model: flan-t5-small: 20.0% / distilgpt2: 30.0%"
FULL_AGREEMENTS = 1
FULL_AGREEMENT_RATE = 0.1
DISAGREEMENT_RATE = 0.9
FORMAT_ACCURACY = {"seq2seq": 0.2, "causal": 0.3}
WRITEUP_MODEL = {"seq2seq": "flan-t5-small", "causal": "distilgpt2"}

# "STEP 3": "✓ Training complete! Loss: 3.9531" (FLAN-T5-small); "STEP 5": "Loss: 3.3547" (DistilGPT2),
# both the mean training loss over 3 epochs.
TRAIN_LOSS = {"seq2seq": 3.9531, "causal": 3.3547}

# "STEP 6", validation example 1: "Unique gadget types: ['Command enable logic', 'Control-Flow gadget']",
# "Majority type: Command enable logic (1/2)"; 1 agreement in 10 bounds the mean from above.
EXAMPLE0_UNIQUE_TYPES = 2

# "Understanding the report": model_format_accuracy "Should be >80% for production use"; "With 100
# examples trained: Agreement rate 10-30% is typical ... Format accuracy 20-40% is expected";
# "Bottom line: ... high disagreement (70-90%)".
PRODUCTION_FORMAT_ACCURACY = 0.8
EXPECTED_AGREEMENT = (0.1, 0.3)
EXPECTED_FORMAT_ACCURACY = (0.2, 0.4)
EXPECTED_DISAGREEMENT = (0.7, 0.9)


def _first_of_kind(training: Mapping[str, Mapping[str, Any]], models: list[str], kind: str) -> str | None:
    return next((m for m in models if training.get(m, {}).get("kind") == kind), None)


def _range_note(value: float | None, bounds: tuple[float, float]) -> str:
    if value is None:
        return ""
    inside = bounds[0] <= value <= bounds[1]
    return f"{'inside' if inside else 'outside'} the write-up's expected {bounds[0]:.0%}-{bounds[1]:.0%}"


def _protocol_note(summary: Mapping[str, Any], split: str, subsample_n: int, n_train: int) -> str:
    where = "validation (write-up split)" if split == "writeup" else "stratified test split"
    rows = f"first/sampled {subsample_n} rows, " if subsample_n else ""
    bases = ", ".join(f"{m}={info.get('base', '?')}" for m, info in summary.get("training", {}).items())
    return f"lmlab: {rows}{n_train} train, {summary['n']} compared on {where}; models {bases}"


def writeup_rows(summary: Mapping[str, Any], *, split: str, subsample_n: int, n_train: int) -> list[WriteupRow]:
    """Every number write-up 002 reports that lmlab measures, beside lmlab's value.

    ``summary`` is :func:`lmlab.ensemble.report.summarize`'s (with ``training`` from
    :func:`lmlab.ensemble.compare.compare_models`); ``split``/``subsample_n`` are
    ``ensemble.data``'s and ``n_train`` the rows the models were trained on.
    """
    models = list(summary["models"])
    training = summary.get("training", {})
    w = summary["writeup"]
    protocol = _protocol_note(summary, split, subsample_n, n_train)
    src = "reports/metrics/ensemble.json"
    rep = "reports/ensemble/report.json:summary.writeup"
    rows = [
        WriteupRow("training rows", str(TRAIN_ROWS), float(n_train), source="data/ensemble/split/train.jsonl",
                   note=protocol),
        WriteupRow("examples compared (write-up: validation rows)", str(VALIDATION_ROWS), float(summary["n"]),
                   source=f"{src}:n"),
        WriteupRow("full agreements (normalised strings)", str(FULL_AGREEMENTS), float(w["full_agreements"]),
                   source=f"{rep}.full_agreements"),
        WriteupRow("full agreement rate (normalised strings)", f"{FULL_AGREEMENT_RATE:.0%}", w["full_agreement_rate"],
                   source=f"{src}:writeup_full_agreement_rate",
                   note=f"{_range_note(w['full_agreement_rate'], EXPECTED_AGREEMENT)}; lmlab's canonical-class "
                        f"agreement on the same examples: {summary['agreement_rate']:.3f} ({src}:agreement_rate)"),
        WriteupRow("disagreement rate (normalised strings)", f"{DISAGREEMENT_RATE:.0%}", w["disagreement_rate"],
                   source=f"{src}:writeup_disagreement_rate",
                   note=_range_note(w["disagreement_rate"], EXPECTED_DISAGREEMENT)),
        WriteupRow("unique gadget types per example (mean)",
                   f"{EXAMPLE0_UNIQUE_TYPES} in its example 1; <= 1.9 implied by 1 agreement in 10",
                   w["mean_unique_types"], source=f"{rep}.mean_unique_types"),
        WriteupRow("unique normalised types per example (mean)", "<= 1.9 (implied by 1 agreement in 10)",
                   w["mean_unique_normalized_types"], source=f"{rep}.mean_unique_normalized_types"),
    ]
    for kind in ("seq2seq", "causal"):
        model = _first_of_kind(training, models, kind)
        name = WRITEUP_MODEL[kind]
        if model is None:
            rows.append(WriteupRow(f"format accuracy, {name}", f"{FORMAT_ACCURACY[kind]:.0%}",
                                   f"no {kind} model in ensemble.models"))
            continue
        fmt = w["model_format_accuracy"][model]
        rows.append(WriteupRow(
            f"format accuracy, {name} (lmlab: {model})", f"{FORMAT_ACCURACY[kind]:.0%}", fmt,
            source=f"{src}:format_accuracy.{model}",
            note=f"criterion > {PRODUCTION_FORMAT_ACCURACY:.0%} for production; "
                 f"{_range_note(fmt, EXPECTED_FORMAT_ACCURACY)}",
            passed=fmt > PRODUCTION_FORMAT_ACCURACY))
        loss = training.get(model, {}).get("train_loss")
        rows.append(WriteupRow(
            f"final mean training loss, {name} (lmlab: {model})", f"{TRAIN_LOSS[kind]:.4f}",
            float(loss) if loss is not None else "not recorded",
            source=f"models/ensemble/{model}/ensemble_model.json:train_loss",
            note="comparable only with the write-up's base model, tokenizer and data"))
    copy = summary["copy_baseline"]
    rows.append(WriteupRow(
        "accuracy of copying the class named in the prompt", "not measured (its prompts name the class)",
        copy["accuracy_prompt_instruction"], source=f"{src}:copy_baseline_prompt_accuracy",
        note=f"on the original instructions: {copy['accuracy_original_instruction']:.3f}; 0 when "
             "ensemble.data.strip_class_from_instruction removed the class (lmlab's default)"))
    by_length = w["by_excerpt_length"]
    rows.append(WriteupRow(
        "Spearman rho, excerpt words vs disagreement", "not measured (its research question 1)",
        by_length["spearman"], source=f"{src}:disagreement_length_spearman",
        note="; ".join(f"{b['min_words']}-{b['max_words']} words: {b['disagreement_rate']:.2f} (n={b['n']})"
                       for b in by_length["bins"])))
    return rows
