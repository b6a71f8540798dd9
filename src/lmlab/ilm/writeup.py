"""The ILM write-ups' numbers beside lmlab's: write-up 000 (pipeline validation) and 001 (EFCAMDAT guide).

The constants below are the figures the lab's write-ups state, each quoted with its section; the
function :func:`ilm_writeup_rows` turns lmlab's ILM outputs (mask statistics, split counts, the
models' training summaries, the perplexity matrix and the infill scores) into
:class:`lmlab.writeup.WriteupRow` s for the report's comparison table.

What is comparable at embedded scale and what is not:

- the protocol's *rates* (mask rate, examples per document, split fractions, CEFR proportions) are
  properties of lmlab's masking and splitting and are compared as they are;
- the step-0 losses, final losses, perplexities and infill scores are measured by the same protocol,
  but the write-up's come from a pretrained GPT-2 on real EFCAMDAT text and lmlab's embedded default
  trains a tiny model from scratch on a generated corpus: the rows carry lmlab's value and say which
  model produced it, and the write-up's success criteria are checked by *direction* (loss decreases,
  the specialised model beats the general one);
- absolute corpus sizes (723,282 documents, 9,258,000 training examples) exist only in the real
  EFCAMDAT export: :data:`NOT_AT_EMBEDDED` unless ``ilm.data.csv`` points at real data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lmlab.ilm.splitting import LEVELS
from lmlab.writeup import NOT_AT_EMBEDDED, WriteupRow

__all__ = ["EMBEDDED_CSV", "WRITEUP", "ilm_writeup_rows"]

#: Written into reports/writeup/ilm.json as the write-ups the rows come from.
WRITEUP = "000_544987009d72c85d + 001_849b2e9c168e8f95"
#: ``ilm.data.csv`` of the embedded default (the generated corpus of stage ilm_sample).
EMBEDDED_CSV = "data/ilm/sample/learner_corpus.csv"

# 001 SECTION 10 "EFCAMDAT Distribution by CEFR Level": "| A1 | 341,155 | 47.17% |" ... "| TOTAL | 723,282 |"
EFCAMDAT_DOCUMENTS = 723_282
LEVEL_SHARE_PCT = {"A1": 47.17, "A2": 29.77, "B1": 16.11, "B2": 5.56, "C1": 1.38}
# 001 SECTION 2.1: "Outputs train/valid/test splits (80/10/10 by default)"
TRAIN_SHARE_PCT = 80.0
# 001 SECTION 3.1: "Mask Rate: ~14% of characters masked"
MASK_RATE_PCT = "~14"
# 001 SECTION 3.1: "78 documents x 16 examples/document = 1,248 training examples";
# 3.2: "Examples Created: ~160 validation examples" (10 valid documents, create_ilm_examples' default 16)
EXAMPLES_PER_TRAIN_DOC = 16
EXAMPLES_PER_VALID_DOC = 16
# 001 SECTION 3.13: "578,625 documents x 16 = 9,258,000 training examples"
ALL_TRAIN_EXAMPLES = 9_258_000
# 000 "Pipeline Validation" / "Output Generation": "Step 0 Evaluation: context_count: 536, context_loss: 3.96 /
# infill_count: 140, infill_loss: 6.61 / infill_textonly_count: 120, infill_textonly_loss: 5.09"
# (GPT-2 fine-tuned on the 100-document sample; --eval_max_num_examples 10, 001 SECTION 4.1)
STEP0 = {"context_loss": 3.96, "context_count": 536, "infill_loss": 6.61, "infill_count": 140,
         "infill_textonly_loss": 5.09, "infill_textonly_count": 120}
STEP0_EVAL_EXAMPLES = 10
# 001 SECTION 4.2-4.7 headings ("Train model on smallest CEFR level dataset (10,000 steps, ...)") and the
# "Expected Steps" each gives for its `--train_num_epochs 1` command; 000 "Training Steps: 3 (1 epoch)" on the
# 100-document sample (78 train documents).
TRAIN_STEPS = {"C1": "10,000 (1 epoch: ~16,000)", "B2": "20,000 (1 epoch: ~64,000)",
               "B1": "30,000 (1 epoch: ~186,462)", "A2": "40,000 (1 epoch: ~344,550)",
               "A1": "50,000 (1 epoch: ~545,848)", "all": "60,000 (1 epoch: ~1,157,250); 100-doc sample: 3"}
# 001 SECTION 4.1 "Success Indicators: Training loss decreases over time"
LOSS_DECREASES = "decreases (success indicator)"
# 001 SECTION 5.7 "Expected pattern": "A1 model on A1 test: PPL ~12-18 / General model on A1 test: PPL ~15-25 /
# C1 model on C1 test: PPL ~25-40 / General model on C1 test: PPL ~80-150" and "This validates the hypothesis
# that specialization improves performance on specific levels."
EXPECTED_PPL = {("A1", "A1"): "~12-18", ("all", "A1"): "~15-25", ("C1", "C1"): "~25-40", ("all", "C1"): "~80-150"}
# 000 "Output Format", the JSON example of ilm_eval.py's results ("ilm:efcamdat_test_sample", overall):
# an illustration of the format, the only infill scores either write-up prints.
INFILL_EXAMPLE = {"top1_accuracy": 0.23, "unigram_recall": 0.45, "unigram_f1": 0.52, "bigram_recall": 0.12,
                  "bigram_f1": 0.18, "n": 150}

_INFILL_NOTE = ("the write-up's values are its output-format example (000 'Output Format'), not a measurement; "
                "character-level unigram, two-character bigram")


def _get(node: Any, *keys: str) -> Any:
    """``node[k1][k2]...`` or None when any level is missing."""
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _pct(value: Any) -> float | None:
    return None if value is None else 100.0 * float(value)


def _share(split: Mapping[str, Any] | None, level: str, part: str = "total") -> float | None:
    total, count = _get(split, "counts", "all", "total"), _get(split, "counts", level, part)
    return 100.0 * count / total if total and count is not None else None


def _model_note(base_model: str, real_data: bool) -> str:
    if base_model == "gpt2" and real_data:
        return "lmlab: gpt2 on the real corpus, as the write-up"
    data = "real data" if real_data else "the embedded generated corpus"
    model = "a tiny model trained from scratch" if base_model.startswith("tiny") else base_model
    return f"write-up: pretrained GPT-2 on EFCAMDAT; lmlab: {model} on {data} (compare the direction, not the value)"


def _data_rows(mask_stats: Mapping[str, Any], split: Mapping[str, Any] | None, real_data: bool) -> list[WriteupRow]:
    stats = mask_stats.get("all", {})
    rates = [_get(mask_stats.get(level), "train", "mask_rate_chars") for level in LEVELS]
    per_level = ", ".join(f"{level} {100 * r:.1f}" for level, r in zip(LEVELS, rates, strict=True) if r is not None)
    rows = [
        WriteupRow("EFCAMDAT documents (all levels)", f"{EFCAMDAT_DOCUMENTS:,}",
                   _get(split, "counts", "all", "total") if real_data else NOT_AT_EMBEDDED,
                   source="ilm_split.json:counts.all.total", note="" if real_data else
                   "needs the real EFCAMDAT export (ilm.data.csv); the embedded corpus draws its level mix from it"),
        *[WriteupRow(f"documents at level {level} (%)", f"{share}", _share(split, level),
                     source=f"ilm_split.json:counts.{level}.total") for level, share in LEVEL_SHARE_PCT.items()],
        WriteupRow("train share of documents (%)", f"{TRAIN_SHARE_PCT:.0f} (80/10/10)", _share(split, "all", "train"),
                   source="ilm_split.json:counts.all.train"),
        WriteupRow("mask rate, train (% of characters)", MASK_RATE_PCT,
                   _pct(_get(stats, "train", "mask_rate_chars")), source="mask_stats/all.json:train.mask_rate_chars",
                   note=f"level all; by level: {per_level}" if per_level else ""),
        WriteupRow("masked examples per train document", f"{EXAMPLES_PER_TRAIN_DOC} (1,248 = 78 x 16)",
                   _get(stats, "train", "examples_per_document"),
                   source="mask_stats/all.json:train.examples_per_document"),
        WriteupRow("masked examples per valid document", f"{EXAMPLES_PER_VALID_DOC} (~160 for 10 documents)",
                   _get(stats, "valid", "examples_per_document"),
                   source="mask_stats/all.json:valid.examples_per_document",
                   note="ilm.mask.examples_per_document.valid (the embedded default keeps evaluation cheap)"),
        WriteupRow("training examples (all levels)", f"{ALL_TRAIN_EXAMPLES:,} (578,625 x 16)",
                   _get(stats, "train", "examples") if real_data else NOT_AT_EMBEDDED,
                   source="mask_stats/all.json:train.examples",
                   note="" if real_data else "needs the real EFCAMDAT export"),
    ]
    return rows


def _training_rows(summaries: Mapping[str, Any], model_params: Mapping[str, Any], model_note: str) -> list[WriteupRow]:
    general = summaries.get("all", {})
    step0 = _get(general, "eval_step0")
    n_eval = _get(general, "eval_examples")
    rows = []
    for key, figure in STEP0.items():
        kind, what = key.rsplit("_", 1)
        note = (f"{model_note}; eval examples: write-up {STEP0_EVAL_EXAMPLES}, lmlab {n_eval}" if what == "count"
                else model_note)
        rows.append(WriteupRow(f"step-0 eval {kind} {what} (general model)", f"{figure}",
                               _get(step0, key) if step0 else None,
                               source=f"models/ilm/all/training_summary.json:eval_step0.{key}",
                               note=note if step0 else "no step-0 eval in training_summary.json"))
    for level in (*LEVELS[::-1], "all"):
        summary = summaries.get(level, {})
        trainer = _get(model_params.get(level), "train", "trainer") or {}
        unit = _get(model_params.get(level), "train", "epoch_unit") or "examples"
        length = (f"{trainer['epochs']} epoch(s) of {unit}" if trainer.get("epochs") is not None
                  else f"max_steps {trainer.get('max_steps')}") if trainer else "unknown"
        rows.append(WriteupRow(f"training steps, level {level}", TRAIN_STEPS[level], _get(summary, "global_step"),
                               source=f"models/ilm/{level}/training_summary.json:global_step",
                               note=f"lmlab budget: {length} (ilm.budget.{level}, else ilm.train.trainer)"))
    for level in (*LEVELS, "all"):
        summary = summaries.get(level, {})
        start, best = _get(summary, "eval_step0", "infill_loss"), _get(summary, "eval_best", "infill_loss")
        passed = best < start if start is not None and best is not None else None
        rows.append(WriteupRow(f"eval infill loss after training, level {level}", LOSS_DECREASES, best,
                               source=f"models/ilm/{level}/training_summary.json:eval_best.infill_loss",
                               note=f"step 0: {start:.3f} (the final model is the best-infill-loss checkpoint)"
                               if start is not None else "no step-0 eval", passed=passed))
    return rows


def _evaluation_rows(ppl_metrics: Mapping[str, Any], infill: Mapping[str, Any], model_note: str) -> list[WriteupRow]:
    rows = []
    for (model, level), figure in EXPECTED_PPL.items():
        name = "general" if model == "all" else model
        rows.append(WriteupRow(f"test perplexity, {name} model on {level}", figure, _get(ppl_metrics, "ppl", model, level),
                               source=f"ilm.json:ppl.{model}.{level}", note=f"infill text-only ppl; {model_note}"))
    for level in LEVELS:
        gain = _get(ppl_metrics, "specialization_gain", level)
        low, high = _get(ppl_metrics, "specialization_gain_ci", level, "low"), _get(
            ppl_metrics, "specialization_gain_ci", level, "high")
        figure = "> 0 (~12-18 vs ~15-25)" if level == "A1" else "> 0 (~25-40 vs ~80-150)" if level == "C1" else "> 0"
        passed = (low > 0) if low is not None else (gain > 0) if gain is not None else None
        rows.append(WriteupRow(
            f"specialisation gain, {level} (%)", figure, _pct(gain), source=f"ilm.json:specialization_gain.{level}",
            note=(f"95% CI [{100 * low:.1f}, {100 * high:.1f}]; passed = CI above 0" if low is not None and high is not None
                  else "the write-up's hypothesis: the specialised model beats the general one"), passed=passed))
    for key, figure in INFILL_EXAMPLE.items():
        rows.append(WriteupRow(f"infill {key}, general model, all levels", f"{figure}", _get(infill, "all", "all", key),
                               source=f"ilm_infill.json:all.all.{key}", note=_INFILL_NOTE))
    return rows


def ilm_writeup_rows(
    *,
    mask_stats: Mapping[str, Any],
    split: Mapping[str, Any] | None,
    summaries: Mapping[str, Any],
    model_params: Mapping[str, Any],
    ppl_metrics: Mapping[str, Any],
    infill: Mapping[str, Any],
    base_model: str,
    real_data: bool,
) -> list[WriteupRow]:
    """Every figure of write-ups 000/001 that lmlab measures, beside lmlab's value.

    ``mask_stats``/``summaries``/``model_params`` map a level (A1..C1, all) to that level's
    ``reports/ilm/mask_stats/<level>.json``, ``models/ilm/<level>/training_summary.json`` and
    ``params.json``; ``split`` is ``ilm_split.json``, ``ppl_metrics`` ``ilm.json`` and ``infill``
    ``ilm_infill.json``. A missing figure becomes ``lmlab=None`` (never a guess). ``base_model`` is
    ``ilm.model.name`` and ``real_data`` whether ``ilm.data.csv`` is not the embedded corpus: they
    decide the notes and which corpus-size rows are :data:`NOT_AT_EMBEDDED`.
    """
    model_note = _model_note(base_model, real_data)
    return [*_data_rows(mask_stats, split, real_data), *_training_rows(summaries, model_params, model_note),
            *_evaluation_rows(ppl_metrics, infill, model_note)]
