"""DVC stage `ilm_infill_eval`: infill quality of every ILM model by CEFR level.

Masks the test texts (``ilm.infill_eval`` in params.yaml), lets every ``--model NAME=SPEC``
(``ilm:<dir>``, ``mlm:<name-or-dir>``, ``t5:<name-or-dir>``; an ``ilm:`` dir may be lmlab's or the
reference's layout) fill them with batched KV-cached decoding, and writes the report
(``config``, ``results.overall``, ``results.by_cefr``), the headline metrics
``<model>.all.{top1_accuracy,unigram_recall,unigram_f1,bigram_recall,bigram_f1,n}`` (the
write-up's character-level scores over all levels; the per-level grid, word-level scores and
counts are in the report) and
one JSONL line of predictions per (model, item).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import stage_outputs
from lmlab.config import load_params
from lmlab.ilm.infill_eval import run_infill_eval, write_outputs
from lmlab.ilm.params import InfillEvalParams
from lmlab.stage import stage_main, stage_parser


@stage_main("ilm_infill_eval")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--model", action="append", default=[], metavar="NAME=SPEC",
                        help="model to evaluate, e.g. A1=ilm:models/ilm/A1 (repeatable; replaces "
                        "ilm.infill_eval.models)")
    parser.add_argument("--out", type=Path, default=Path("reports/ilm/infill_eval.json"))
    parser.add_argument("--metrics", type=Path, default=Path("reports/metrics/ilm_infill.json"))
    parser.add_argument("--predictions", type=Path, default=Path("reports/ilm/infill_predictions.jsonl"))
    args = parser.parse_args(argv)
    models = dict(m.partition("=")[::2] for m in args.model)
    params = load_params(InfillEvalParams, args.params, "ilm.infill_eval", top_level=("seed",),
                         overrides={"models": models} if models else None)
    with stage_outputs([args.out, args.metrics, args.predictions]):
        report = run_infill_eval(params)
        write_outputs(report, args.out, args.metrics, args.predictions)


if __name__ == "__main__":
    raise SystemExit(main())
