"""DVC stage `mono_sample`: the embedded general English text of the monotonic family.

Writes `n_documents` (param `monotonic.sample.n_documents`) deterministic encyclopedia- and
news-like paragraphs, one per line, generated from `seed` (see lmlab.monotonic.corpus). Real runs
point `monotonic.data.text` at another corpus and ignore this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_text, stage_outputs
from lmlab.config import load_params
from lmlab.monotonic.corpus import SampleParams, generate_general_text
from lmlab.stage import stage_main, stage_parser


@stage_main("mono_sample")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="text file to write (one document per line)")
    args = parser.parse_args(argv)
    params = load_params(SampleParams, args.params, "monotonic.sample", top_level=("seed",))
    with stage_outputs([args.out]):
        docs = generate_general_text(params.n_documents, params.seed)
        atomic_write_text(args.out, "".join(d + "\n" for d in docs))


if __name__ == "__main__":
    raise SystemExit(main())
