"""The ``lmlab`` command line: interactive infilling and the infill evaluation.

``lmlab infill --model DIR`` fills ``[MASK]`` placeholders with a trained ILM: an lmlab ILM dir or
one trained by the reference's ``train_ilm.py`` (``--tokenizer`` names the GPT-2 tokenizer of a
reference dir that holds none: :mod:`lmlab.ilm.model_dirs`). A typed
placeholder ``[MASK:word]``, ``[MASK:ngram]``, ``[MASK:sentence]``, ``[MASK:paragraph]`` or
``[MASK:document]`` picks the ILM mask token; a bare ``[MASK]`` uses ``--default-type``
(``ngram``: one to a few words). As in training, the space before a placeholder belongs to
the answer. Input: ``--text`` (repeatable), else stdin when it is not a terminal (one text
per non-empty line, all filled in one batch), else an interactive prompt (one text per
line, empty line or Ctrl-D to quit).

``lmlab preview PICKLE -n 5`` prints ORIGINAL / CONTEXT / ANSWERS of masked ILM examples
(one random example of each of N random documents).

``lmlab infill-eval`` runs :func:`lmlab.ilm.infill_eval.run_infill_eval`, the same call as the
``ilm_infill_eval`` stage, with options instead of params.yaml.

``lmlab export-reference model DIR OUT`` writes an ILM dir in the reference's layout
(``pytorch_model.bin``, ``config.json``, ``additional_ids_to_tokens.pkl``);
``lmlab export-reference examples PICKLE OUT`` writes a masked-examples pickle in the
reference's format (span types as ``ilm.mask.hierarchical.MaskHierarchicalType``), which
``train_ilm.py`` reads. A directory of pickles (``data/ilm/masked/<level>``) exports each
``*.pkl`` into the directory OUT.

Errors in user input (a model directory without ``ilm_special_tokens.json``, a CSV without
the text column, an empty test split) print one paragraph on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from lmlab.errors import InputError, LmlabError
from lmlab.ilm.format import MASK_TOKENS, MaskType

logger = logging.getLogger(__name__)

__all__ = ["main", "placeholders_to_context"]

EXIT_INPUT_ERROR = 2
PLACEHOLDER_RE = re.compile(r"\[MASK(?::(\w+))?\]", re.IGNORECASE)
TYPE_NAMES = tuple(t.name.lower() for t in MaskType)


def placeholders_to_context(text: str, default_type: str = "ngram") -> str:
    """Replace ``[MASK]`` / ``[MASK:type]`` by ILM mask tokens (the preceding space goes with the mask)."""
    out: list[str] = []
    cursor = 0
    for match in PLACEHOLDER_RE.finditer(text):
        kind = (match.group(1) or default_type).lower()
        if kind not in TYPE_NAMES:
            raise InputError(f"unknown placeholder type {match.group(0)!r} at character {match.start() + 1}.",
                             hint=f"use [MASK] or [MASK:<type>] with type in {', '.join(TYPE_NAMES)}.")
        before = text[cursor:match.start()]
        if before.endswith(" "):
            before = before[:-1]
        out.append(before)
        out.append(MASK_TOKENS[MaskType[kind.upper()]])
        cursor = match.end()
    out.append(text[cursor:])
    return "".join(out)


def _fill(ilm, texts: Sequence[str], args: argparse.Namespace) -> list[str]:
    contexts = [placeholders_to_context(t, args.default_type) for t in texts]
    results = ilm.infill(contexts, decoding=args.decoding, top_p=args.top_p, seed=args.seed,
                         max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    filled = []
    for result, context in zip(results, contexts):
        missing = ilm.count_masks(ilm.encode_context(context)) - len(result.answers)
        if result.unterminated:
            logger.warning("the last answer has no <|endofinfill|> within --max-new-tokens: filled as generated")
        if missing > 0:
            logger.warning("%d mask(s) left unfilled (the model hit the length limit)", missing)
        filled.append(result.text)
    return filled


def _cmd_infill(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> None:
    from transformers.utils import logging as hf_logging

    from lmlab.ilm.infillers import load_ilm

    hf_logging.disable_progress_bar()  # keep the terminal for the filled texts
    if args.threads:
        from lmlab.device import limit_cpu_threads

        limit_cpu_threads(args.threads)
    ilm = load_ilm(args.model, args.device, args.tokenizer)
    if args.text:
        texts = list(args.text)
    elif not stdin.isatty():
        texts = [line.rstrip("\n") for line in stdin if line.strip()]
    else:
        stdout.write("Type a text with [MASK] placeholders (empty line or Ctrl-D quits).\n")
        while True:
            stdout.write("text> ")
            stdout.flush()
            line = stdin.readline()
            if not line.strip():
                return
            try:
                stdout.write(_fill(ilm, [line.rstrip("\n")], args)[0] + "\n")
            except InputError as exc:
                stdout.write(f"error: {exc}\n")
    for filled in _fill(ilm, texts, args):
        stdout.write(filled + "\n")


def _model_arg(value: str) -> tuple[str, str]:
    name, sep, spec = value.partition("=")
    if not sep:
        spec = value
        name = Path(value.partition(":")[2]).name or value
    return name, spec


def _cmd_infill_eval(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> None:
    from lmlab.artifacts import stage_outputs
    from lmlab.ilm.infill_eval import InfillEvalParams, run_infill_eval, write_outputs

    try:
        params = InfillEvalParams(
            test_csv=str(args.csv), models=dict(_model_arg(m) for m in args.model), text_column=args.text_column,
            cefr_column=args.cefr_column, id_column=args.id_column, masking=args.masking, n_masks=args.n_masks,
            samples_per_text=args.samples_per_text, max_ngram=args.max_ngram, max_chars=args.max_chars,
            limit=args.limit, decoding=args.decoding, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size, device=args.device, threads=args.threads, seed=args.seed,
            reference_tokenizer=args.reference_tokenizer, unterminated=args.unterminated, overlap=args.overlap,
        )
    except ValueError as exc:
        raise InputError(f"invalid option: {exc}") from exc
    with stage_outputs([args.out, args.metrics, args.predictions]):
        report = run_infill_eval(params)
        write_outputs(report, args.out, args.metrics, args.predictions)
    for model, levels in report["results"]["by_cefr"].items():
        overall = report["results"]["overall"][model]
        stdout.write(f"{model}: top1 {overall['top1_accuracy']:.3f} unigram_f1 {overall['unigram_f1']:.3f} "
                     f"bigram_f1 {overall['bigram_f1']:.3f} n {overall['n']} (levels: {', '.join(levels)})\n")


def _cmd_export_reference(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> None:
    if args.kind == "model":
        from lmlab.ilm.model_dirs import export_reference_dir

        info = export_reference_dir(args.source, args.out, args.tokenizer)
        stdout.write(f"exported {args.source} -> {args.out} (reference tokenizer compatible: "
                     f"{info['reference_tokenizer_compatible']})\n")
        return
    from lmlab.ilm.pickles import export_reference_pickle, load_pickle
    from lmlab.ilm.sequences import check_masked

    source = Path(args.source)
    pairs = [(p, Path(args.out) / p.name) for p in sorted(source.glob("*.pkl"))] if source.is_dir() \
        else [(source, Path(args.out))]
    if not pairs:
        raise InputError("no *.pkl file in the directory.", path=source)
    for src, out in pairs:
        out.parent.mkdir(parents=True, exist_ok=True)
        count = export_reference_pickle(check_masked(load_pickle(src), src), out)
        stdout.write(f"exported {src} -> {out} ({count} documents)\n")


def _cmd_preview(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> None:
    from lmlab.ilm.masking import format_preview
    from lmlab.ilm.pickles import load_pickle

    stdout.write(format_preview(load_pickle(args.pickle), n=args.n, seed=args.seed))


def _decoding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--decoding", choices=("greedy", "nucleus"), default="greedy")
    parser.add_argument("--top-p", type=float, default=0.95, help="nucleus mass (reference: 0.95)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, mps")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmlab", description="lmlab command line tools")
    sub = parser.add_subparsers(dest="command", required=True)

    infill = sub.add_parser("infill", help="fill [MASK] placeholders with a trained ILM")
    infill.add_argument("--model", required=True, type=Path, help="ILM model directory (e.g. models/ilm/all)")
    infill.add_argument("--text", action="append", help="text with [MASK] placeholders (repeatable)")
    infill.add_argument("--default-type", choices=TYPE_NAMES, default="ngram", help="type of a bare [MASK]")
    infill.add_argument("--tokenizer", default=None,
                        help="tokenizer of a reference-format dir without tokenizer files (dir or cached hub name; "
                        "default gpt2)")
    _decoding_options(infill)
    infill.set_defaults(func=_cmd_infill)

    ev = sub.add_parser("infill-eval", help="infill evaluation by model and CEFR level (stage ilm_infill_eval)")
    ev.add_argument("--csv", type=Path, default=Path("data/ilm/splits/all/test.meta.csv"))
    ev.add_argument("--model", action="append", required=True,
                    help="[NAME=]ilm:<dir> | mlm:<name-or-dir> | t5:<name-or-dir> (repeatable)")
    ev.add_argument("--text-column", default="text")
    ev.add_argument("--cefr-column", default="cefr")
    ev.add_argument("--id-column", default="id")
    ev.add_argument("--masking", choices=("human-tokens", "random"), default="human-tokens")
    ev.add_argument("--n-masks", type=int, default=1)
    ev.add_argument("--samples-per-text", type=int, default=1)
    ev.add_argument("--max-ngram", type=int, default=3, help="longest random span in words")
    ev.add_argument("--max-chars", type=int, default=600)
    ev.add_argument("--limit", type=int, default=30, help="texts per CEFR level (0 = all)")
    ev.add_argument("--out", type=Path, default=Path("reports/ilm/infill_eval.json"))
    ev.add_argument("--metrics", type=Path, default=Path("reports/metrics/ilm_infill.json"))
    ev.add_argument("--predictions", type=Path, default=Path("reports/ilm/infill_predictions.jsonl"))
    ev.add_argument("--reference-tokenizer", default="gpt2",
                    help="tokenizer of reference-format model dirs without tokenizer files (dir or cached hub name)")
    ev.add_argument("--unterminated", choices=("keep", "drop"), default="keep",
                    help="an answer without <|endofinfill|>: scored as generated (keep) or dropped (the reference)")
    ev.add_argument("--overlap", choices=("set", "multiset"), default="set",
                    help="character overlap over distinct characters (the lab's script) or clipped counts")
    _decoding_options(ev)
    ev.set_defaults(func=_cmd_infill_eval)

    export = sub.add_parser("export-reference", help="write an ILM dir or masked pickles in the reference's formats")
    export.add_argument("kind", choices=("model", "examples"))
    export.add_argument("source", type=Path, help="ILM model dir, or a masked pickle / a directory of them")
    export.add_argument("out", type=Path, help="output dir (model, pickle directory) or pickle file")
    export.add_argument("--tokenizer", default=None, help="tokenizer of a reference-format source dir (see infill)")
    export.set_defaults(func=_cmd_export_reference)

    preview = sub.add_parser("preview", help="print ORIGINAL / CONTEXT / ANSWERS of masked ILM examples")
    preview.add_argument("pickle", type=Path, help="masked examples pickle (e.g. data/ilm/masked/all/train.pkl)")
    preview.add_argument("-n", type=int, default=5, help="number of documents (one random example each)")
    preview.add_argument("--seed", type=int, default=0, help="which documents/examples are drawn")
    preview.set_defaults(func=_cmd_preview)
    return parser


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Entry point of the ``lmlab`` console script; returns the exit code."""
    from lmlab.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(f"lmlab {args.command}", level="WARNING" if args.command == "infill" else None)
    try:
        args.func(args, stdin or sys.stdin, stdout or sys.stdout)
    except LmlabError as exc:
        sys.stderr.write(f"lmlab {args.command}: {exc}\n")
        return EXIT_INPUT_ERROR
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
