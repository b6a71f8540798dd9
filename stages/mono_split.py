"""DVC stage `mono_split`: train/valid/test splits of the monotonic family's general text.

Reads `monotonic.data.text` (a text file with one document per line, a JSONL file or a CSV
with `monotonic.data.text_fields` columns), deduplicates it and writes
`<out>/{train,valid,test}.jsonl` (`{"text": ...}` rows; no text in two splits). Training uses
train/valid; perplexity, UAT evaluation and HotFlip use test; UAT optimisation uses valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_dir, stage_outputs
from lmlab.config import load_params
from lmlab.monotonic.corpus import SplitParams, split_jsonl, split_texts
from lmlab.stage import stage_main, stage_parser
from lmlab.tokenization import iter_corpus_texts


@stage_main("mono_split")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="splits directory to create")
    args = parser.parse_args(argv)
    params = load_params(SplitParams, args.params, "monotonic.data", top_level=("seed",))
    with stage_outputs([args.out]):
        splits = split_texts(iter_corpus_texts(params.text, params.text_fields, fields_key="monotonic.data.text_fields"),
                             params, params.seed)
        with atomic_dir(args.out) as tmp:
            for name, texts in splits.items():
                (tmp / f"{name}.jsonl").write_text(split_jsonl(texts), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
