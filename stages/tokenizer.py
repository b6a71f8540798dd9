"""DVC stages `<family>_tokenizer`: the tokenizer a family's models use.

Tiny base models get a byte-level BPE trained on the family's corpus; a real base model
(hub name or local dir) keeps its own tokenizer. The family's special tokens are added
the same way in both cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import stage_outputs
from lmlab.config import load_params, params_to_dict
from lmlab.modeling import ModelSpec, save_model_dir
from lmlab.stage import stage_main, stage_parser
from lmlab.tokenization import TokenizerParams, iter_corpus_texts, prepare_tokenizer


@stage_main("tokenizer")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--section", required=True, help="family section in params.yaml (ilm, ensemble, ...)")
    parser.add_argument("--model-key", default="model", help="sub-section naming the base model")
    parser.add_argument("--corpus", type=Path, nargs="+", required=True, help="CSV, JSONL or text files")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_params(TokenizerParams, args.params, f"{args.section}.tokenizer")
    spec = load_params(ModelSpec, args.params, f"{args.section}.{args.model_key}")
    with stage_outputs([args.out]):
        fields_key = f"{args.section}.tokenizer.text_fields"
        texts = [t for path in args.corpus for t in iter_corpus_texts(path, params.text_fields, fields_key=fields_key)]
        tokenizer = prepare_tokenizer(spec.name, texts, params.vocab_size, params.special_tokens, is_tiny=spec.tiny,
                                      min_frequency=params.min_frequency)
        tokenizer.model_max_length = spec.max_positions
        save_model_dir(args.out, None, tokenizer, {"tokenizer": params_to_dict(params), "base_model": spec.name})


if __name__ == "__main__":
    raise SystemExit(main())
