"""DVC stages `<family>_tokenizer`: the tokenizer a family's models use.

Tiny base models get a byte-level BPE trained on the family's corpus; a real base model
(hub name or local dir) keeps its own tokenizer. The family's special tokens are added
the same way in both cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lmlab.config import build_params, load_params, params_to_dict, read_params_file, section_of
from lmlab.modeling import ModelSpec
from lmlab.stage import stage_main, stage_parser
from lmlab.tokenization import iter_corpus_texts, prepare_tokenizer
from lmlab.training import save_model_dir


@dataclass(frozen=True)
class TokenizerParams:
    vocab_size: int = 2048
    min_frequency: int = 2
    special_tokens: tuple[str, ...] = ()
    text_fields: tuple[str, ...] = ("text",)

    def __post_init__(self) -> None:
        if self.vocab_size < 300:
            raise ValueError(f"vocab_size: must be >= 300, got {self.vocab_size}")


@stage_main("train_tokenizer")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--section", required=True, help="family section in params.yaml (ilm, ensemble, ...)")
    parser.add_argument("--model-key", default="model", help="sub-section naming the base model")
    parser.add_argument("--corpus", type=Path, nargs="+", required=True, help="CSV, JSONL or text files")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_params(TokenizerParams, args.params, f"{args.section}.tokenizer")
    raw = section_of(read_params_file(args.params), f"{args.section}.{args.model_key}", args.params)
    spec = build_params(ModelSpec, raw, key_prefix=f"{args.section}.{args.model_key}", path=args.params)
    texts = [t for path in args.corpus for t in iter_corpus_texts(path, params.text_fields,
                                                                fields_key=f"{args.section}.tokenizer.text_fields")]
    tokenizer = prepare_tokenizer(spec.name, texts, params.vocab_size, params.special_tokens, is_tiny=spec.tiny)
    tokenizer.model_max_length = spec.max_positions
    save_model_dir(args.out, None, tokenizer, {"tokenizer": params_to_dict(params), "base_model": spec.name})


if __name__ == "__main__":
    raise SystemExit(main())
