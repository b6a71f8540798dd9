"""DVC stage `ilm_sample`: generate the embedded learner-English sample corpus (EFCAMDAT-format CSV).

Deterministic from `seed`; size from `ilm.sample.n_documents` (see lmlab.ilm.corpus).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_path, stage_outputs
from lmlab.config import load_params
from lmlab.ilm.corpus import generate_learner_corpus
from lmlab.ilm.params import SampleParams
from lmlab.stage import stage_main, stage_parser


@stage_main("ilm_sample")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    args = parser.parse_args(argv)
    params = load_params(SampleParams, args.params, "ilm.sample", top_level=("seed",))
    corpus = generate_learner_corpus(params.n_documents, params.seed)
    with stage_outputs([args.out]), atomic_path(args.out) as tmp:
        corpus.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
