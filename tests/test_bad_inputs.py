"""Bad input never corrupts anything: one table, every stage, every kind of bad input.

Each row calls a stage's ``main([...])`` in-process with a temporary params file (the project's
params.yaml plus the row's overrides) and temporary input files, then checks the guarantee:

* exit code 2 (an input error, not a crash);
* exactly one ERROR paragraph in the log (no traceback, no blank line) that contains the row's
  fragment: the file with its line (and column where the format has one) or the dotted param key
  with its ``params.yaml:line:column``;
* none of the outputs passed to the stage exists afterwards, and no temporary sibling
  (``.<name>.tmp-*``) is left next to them.

Rows whose ``expected`` is ``None`` are inputs that must *work* (quoted multi-line CSV fields,
duplicate rows that are dropped and counted, a 1 MB single document): exit code 0.
Stages that need a trained model must reject their bad input before loading any model, so the
model paths in these rows do not even exist. ``install_punkt`` takes no user input and is absent.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import write_params

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    """The tiny BPE plus the ILM special tokens (what ilm_tokenizer writes), saved to a dir."""
    import copy

    from lmlab.ilm.format import ILM_SPECIAL_TOKENS
    from lmlab.tokenization import add_special_tokens

    tokenizer = copy.deepcopy(tiny_tokenizer)
    add_special_tokens(tokenizer, list(ILM_SPECIAL_TOKENS))
    out = tmp_path_factory.mktemp("tokenizer") / "tok"
    tokenizer.save_pretrained(out)
    return out


@dataclass
class Ctx:
    """What a row's builders get: the row's temp dir and the shared fixtures."""

    tmp: Path
    nltk: Path
    tokenizer: Path
    overrides: dict = field(default_factory=dict)
    raw_params: Callable[[str], str] | None = None

    def path(self, name: str) -> Path:
        p = self.tmp / "in" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def out(self, name: str) -> Path:
        return self.tmp / "out" / name


def write_ctx_params(ctx: Ctx) -> Path:
    path = write_params(ctx.tmp / "params.yaml", ctx.overrides)
    if ctx.raw_params:
        path.write_text(ctx.raw_params(path.read_text()))
    return path


# ----------------------------------------------------------------------------- input writers

GOOD_TEXT = "I live in a small house with my family. My house have three rooms and a garden."


def learner_csv(rows: list[tuple[str, str, str, str]], header: str = "id,cefr,l1,text") -> str:
    def q(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    return header + "\n" + "".join(f"{i},{c},{l1},{q(t)}\n" for i, c, l1, t in rows)


def good_learner_rows(n_per_level: int = 6) -> list[tuple[str, str, str, str]]:
    rows = []
    for li, level in enumerate(("A1", "A2", "B1", "B2", "C1")):
        for j in range(n_per_level):
            rows.append((str(li * 100 + j), level, "Portuguese" if j % 2 else "German",
                         f"Text {level} {j}. {GOOD_TEXT} Number {j} of level {level}."))
    return rows


def ilm_csv(content: str | bytes, **extra: object) -> Callable[[Ctx], None]:
    """Write the corpus CSV and point every CSV-reading ILM param at it."""

    def write(ctx: Ctx) -> None:
        p = ctx.path("corpus.csv")
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        ctx.overrides.update({"ilm.data.csv": str(p), "ilm.infill_eval.test_csv": str(p), **extra})

    return write


def text_file(name: str, content: str | bytes, param: str | None = None) -> Callable[[Ctx], None]:
    def write(ctx: Ctx) -> None:
        p = ctx.path(name)
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        if param:
            ctx.overrides[param] = str(p)

    return write


def params_only(**overrides: object) -> Callable[[Ctx], None]:
    def write(ctx: Ctx) -> None:
        ctx.overrides.update(overrides)

    return write


def raw_params(old: str, new: str) -> Callable[[Ctx], None]:
    """Edit the params file text (for keys the YAML writer cannot express, e.g. a duplicate)."""

    def write(ctx: Ctx) -> None:
        ctx.raw_params = lambda text: text.replace(old, new, 1)

    return write


def both(*writers: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    def write(ctx: Ctx) -> None:
        for w in writers:
            w(ctx)

    return write


def jsonl(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


INSTR = json.dumps({"instruction": "Classify the gadget.", "input": "The register stores a value.",
                    "output": "Gadget type: Read/Write gadget"})
DECISION = json.dumps({"conversations": [
    {"from": "system", "value": "You are a reviewer."},
    {"from": "human", "value": "Strengths: clear. Weaknesses: none."},
    {"from": "gpt", "value": "\\boxed{Accept}"}]})
TEXT_ROW = json.dumps({"text": "The river flows through the old town and into the sea."})
BAD_UTF8 = b"id,cefr,l1,text\n1,A1,German,\"caf\xe9 ok\"\n"

# ----------------------------------------------------------------------------- argv builders
# Each returns (argv without --params, outputs that must not exist after a failure).


def a_ilm_sample(c: Ctx):
    return ["--out", str(c.out("corpus.csv"))], [c.out("corpus.csv")]


def a_ilm_split(c: Ctx):
    return ["--out", str(c.out("splits")), "--metrics", str(c.out("split.json"))], [c.out("splits"), c.out("split.json")]


def a_ilm_mask(c: Ctx):
    splits = c.tmp / "in" / "splits"
    return (["--splits", str(splits), "--nltk-data", str(c.nltk), "--out", str(c.out("masked")),
             "--stats", str(c.out("stats.json"))], [c.out("masked"), c.out("stats.json")])


def tokenizer_argv(section: str, corpus: str, *extra: str):
    def build(c: Ctx):
        return (["--section", section, *extra, "--corpus", str(c.tmp / "in" / corpus), "--out", str(c.out("tok"))],
                [c.out("tok")])

    return build


def a_ilm_train(c: Ctx):
    outs = [c.out("model"), c.out("live")]
    return (["--level", "A1", "--train", str(c.tmp / "in" / "train.pkl"), "--valid", str(c.tmp / "in" / "valid.pkl"),
             "--tokenizer", str(c.tokenizer), "--checkpoints", str(c.out("ckpt")), "--live", str(c.out("live")),
             "--out", str(c.out("model"))], outs)


def a_ilm_eval(c: Ctx):
    outs = [c.out("ilm.json"), c.out("eval.json"), c.out("heat.png"), c.out("gain.png")]
    return (["--model", f"A1={c.tmp / 'no-model'}", "--test", f"A1={c.tmp / 'in' / 'test.pkl'}",
             "--metrics", str(outs[0]), "--report", str(outs[1]), "--heatmap", str(outs[2]), "--gain-plot", str(outs[3])],
            outs)


def a_ilm_infill(c: Ctx):
    outs = [c.out("infill.json"), c.out("infill_metrics.json"), c.out("pred.jsonl")]
    return (["--model", f"A1=ilm:{c.tmp / 'no-model'}", "--out", str(outs[0]), "--metrics", str(outs[1]),
             "--predictions", str(outs[2])], outs)


def a_ens_sample(c: Ctx):
    return ["--out", str(c.out("gadgets.jsonl"))], [c.out("gadgets.jsonl")]


def a_ens_split(c: Ctx):
    return ["--jsonl", str(c.tmp / "in" / "data.jsonl"), "--out-dir", str(c.out("split"))], [c.out("split")]


def a_ens_train(c: Ctx):
    outs = [c.out("model"), c.out("live")]
    return (["--model", "causal", "--train", str(c.tmp / "in" / "data.jsonl"), "--valid", str(c.tmp / "in" / "data.jsonl"),
             "--tokenizer", str(c.tokenizer), "--out", str(outs[0]), "--checkpoints", str(c.out("ckpt")),
             "--live", str(outs[1])], outs)


def a_ens_compare(c: Ctx):
    outs = [c.out("report.json"), c.out("ensemble.json"), c.out("plots") / "ensemble_agreement.png",
            c.out("plots") / "ensemble_class_accuracy.png", c.out("examples.csv"), c.out("writeup.json")]
    return (["--test", str(c.tmp / "in" / "data.jsonl"), "--train", str(c.tmp / "in" / "data.jsonl"),
             "--models-dir", str(c.tmp / "no-models"), "--report", str(outs[0]), "--metrics", str(outs[1]),
             "--plots-dir", str(c.out("plots")), "--examples-csv", str(outs[4]), "--writeup", str(outs[5])], outs)


def a_wl_sample(c: Ctx):
    return (["--pool", str(c.out("pool.jsonl")), "--test", str(c.out("test.jsonl"))],
            [c.out("pool.jsonl"), c.out("test.jsonl")])


def a_wl_data(c: Ctx):
    return (["--pool", str(c.tmp / "in" / "data.jsonl"), "--test", str(c.tmp / "in" / "data.jsonl"),
             "--out", str(c.out("sets"))], [c.out("sets")])


def a_wl_train(c: Ctx):
    outs = [c.out("model"), c.out("live")]
    return (["--config", "odds_1_2-accept", "--train", str(c.tmp / "in" / "data.jsonl"), "--tokenizer", str(c.tokenizer),
             "--out", str(outs[0]), "--checkpoints", str(c.out("ckpt")), "--live", str(outs[1])], outs)


def a_wl_eval(c: Ctx):
    outs = [c.out("weighted.json"), c.out("eval.json"), c.out("plots") / "weighted_acceptance.png",
            c.out("plots") / "weighted_accuracy.png", c.out("writeup.json")]
    return (["--test", str(c.tmp / "in" / "data.jsonl"), "--models", str(c.tmp / "no-models"),
             "--sets-summary", str(c.tmp / "no-sets" / "summary.json"), "--metrics", str(outs[0]),
             "--eval-json", str(outs[1]), "--plots", str(c.out("plots")), "--writeup", str(outs[4])], outs)


def a_mono_sample(c: Ctx):
    return ["--out", str(c.out("general.txt"))], [c.out("general.txt")]


def a_mono_split(c: Ctx):
    return ["--out", str(c.out("splits"))], [c.out("splits")]


def a_mono_pretrain(c: Ctx):
    outs = [c.out("model"), c.out("live")]
    return (["--splits", str(c.tmp / "in"), "--tokenizer", str(c.tokenizer), "--out", str(outs[0]),
             "--checkpoints", str(c.out("ckpt")), "--live", str(outs[1])], outs)


def a_mono_train(c: Ctx):
    outs = [c.out("model"), c.out("live")]
    return (["--arm", "monotonic", "--base", str(c.tmp / "no-base"), "--splits", str(c.tmp / "in"),
             "--out", str(outs[0]), "--checkpoints", str(c.out("ckpt")), "--live", str(outs[1])], outs)


def a_mono_eval(c: Ctx):
    return (["--baseline", str(c.tmp / "no-model"), "--monotonic", str(c.tmp / "no-model"),
             "--pretrained", str(c.tmp / "no-model"), "--test", str(c.tmp / "in" / "test.jsonl"),
             "--out", str(c.out("ppl.json"))], [c.out("ppl.json")])


def a_mono_attack(c: Ctx):
    outs = [c.out("logs") / "uat.jsonl", c.out("logs") / "hotflip.jsonl", c.out("monotonic.json"), c.out("plot.png"),
            c.out("writeup.json"), c.out("attack_metrics.json")]
    return (["--baseline", str(c.tmp / "no-model"), "--monotonic", str(c.tmp / "no-model"), "--splits", str(c.tmp / "in"),
             "--perplexity", str(c.tmp / "in" / "ppl.json"), "--logs", str(c.out("logs")), "--metrics", str(outs[2]),
             "--plot", str(outs[3]), "--writeup", str(outs[4]), "--detail", str(outs[5])], outs)


def a_report(c: Ctx):
    outs = [c.out("summary.md"), c.out("summary.json")]
    return (["--metrics", f"ilm={c.tmp / 'in' / 'ilm.json'}", "--out-md", str(outs[0]), "--out-json", str(outs[1])],
            outs)


# ----------------------------------------------------------------------------- composite writers


def ilm_splits_dir(train: bytes | None = None) -> Callable[[Ctx], None]:
    """A one-level splits dir as ilm_split writes it (optionally with a bad train.txt)."""

    def write(ctx: Ctx) -> None:
        docs = [f"Text {i}. {GOOD_TEXT}" for i in range(4)]
        for split in ("train", "valid", "test"):
            ctx.path(f"splits/{split}.txt").write_text("\n\n\n".join(docs), encoding="utf-8")
            meta = "id,cefr,l1,text\n" + "".join(f'{i},A1,German,"{d}"\n' for i, d in enumerate(docs))
            ctx.path(f"splits/{split}.meta.csv").write_text(meta, encoding="utf-8")
        if train is not None:
            ctx.path("splits/train.txt").write_bytes(train)

    return write


def pickles(train: bytes, name: str = "train.pkl") -> Callable[[Ctx], None]:
    def write(ctx: Ctx) -> None:
        import pickle

        good = pickle.dumps([(GOOD_TEXT, [[(4, 2, 4)]])])
        for n in ("train.pkl", "valid.pkl", "test.pkl"):
            ctx.path(n).write_bytes(good)
        ctx.path(name).write_bytes(train)

    return write


def mono_splits(train: str | bytes = TEXT_ROW + "\n", valid: str = TEXT_ROW + "\n") -> Callable[[Ctx], None]:
    def write(ctx: Ctx) -> None:
        for name, content in (("train.jsonl", train), ("valid.jsonl", valid), ("test.jsonl", valid)):
            ctx.path(name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        ctx.path("ppl.json").write_text("{}")

    return write


class MaliciousPayload:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/lmlab-pwned",))


def malicious_pickle() -> bytes:
    import pickle

    return pickle.dumps(MaliciousPayload())


# ----------------------------------------------------------------------------- the table

P = r"params\.yaml:\d+:\d+, key '{}'"  # a params error names the file position and the dotted key


def row(id_: str, stage: str, argv, writer, expected: str | None, *, marks=()):
    return pytest.param(stage, argv, writer, expected, id=id_, marks=marks)


MONO_CSV = 'text,other\n"First line of a document,\nsecond line, quoted.",x\n"A second, different document.",y\n'
ONE_MB = "word " * 210_000

CASES = [
    # ---- ilm_sample
    row("ilm_sample-zero-size", "ilm_sample", a_ilm_sample, params_only(**{"ilm.sample.n_documents": 0}),
        P.format(r"ilm\.sample\.n_documents")),
    row("ilm_sample-wrong-type", "ilm_sample", a_ilm_sample, params_only(**{"ilm.sample.n_documents": "many"}),
        P.format(r"ilm\.sample\.n_documents")),
    row("ilm_sample-unknown-key", "ilm_sample", a_ilm_sample, params_only(**{"ilm.sample.n_docs": 5}),
        P.format(r"ilm\.sample\.n_docs")),
    row("ilm_sample-seed-wrong-type", "ilm_sample", a_ilm_sample, params_only(seed="zero"), P.format("seed")),
    # ---- ilm_split: CSV
    row("ilm_split-missing-column", "ilm_split", a_ilm_split,
        ilm_csv(learner_csv(good_learner_rows()).replace("id,cefr,l1,text", "id,level,l1,text", 1)),
        r"corpus\.csv.*'cefr'"),
    row("ilm_split-unknown-label-strict", "ilm_split", a_ilm_split,
        ilm_csv(learner_csv([*good_learner_rows(), ("999", "B3", "German", GOOD_TEXT + " extra")]),
                **{"ilm.data.strict_labels": True}), r"corpus\.csv:32\b.*B3"),
    row("ilm_split-unknown-label-lenient", "ilm_split", a_ilm_split,
        ilm_csv(learner_csv([*good_learner_rows(), ("999", "C2", "German", GOOD_TEXT + " extra")])), None),
    row("ilm_split-only-empty-texts", "ilm_split", a_ilm_split,
        ilm_csv(learner_csv([(str(i), "A1", "German", " \n\t ") for i in range(6)] + [("9", "B1", "German", "")])),
        r"corpus\.csv"),
    row("ilm_split-multiline-quoted", "ilm_split", a_ilm_split,
        ilm_csv(learner_csv([(i, c, l1, t.replace(". ", ".\nSecond paragraph, \"quoted\", here.\n", 1))
                             for i, c, l1, t in good_learner_rows()])), None),
    row("ilm_split-non-utf8", "ilm_split", a_ilm_split, ilm_csv(BAD_UTF8), r"corpus\.csv:2:\d+.*0xe9"),
    row("ilm_split-1mb-document", "ilm_split", a_ilm_split,
        ilm_csv(learner_csv([*good_learner_rows(), ("999", "B2", "German", ONE_MB)])), None),
    row("ilm_split-duplicate-rows", "ilm_split", a_ilm_split,
        ilm_csv(learner_csv(good_learner_rows() + good_learner_rows()[:10])), None),
    row("ilm_split-ragged-row", "ilm_split", a_ilm_split,
        ilm_csv(learner_csv(good_learner_rows()) + '77,A1,German,"text",extra,fields\n'), r"corpus\.csv:32\b"),
    row("ilm_split-empty-file", "ilm_split", a_ilm_split, ilm_csv(b""), r"corpus\.csv.*empty"),
    row("ilm_split-missing-file", "ilm_split", a_ilm_split,
        params_only(**{"ilm.data.csv": "/nonexistent/corpus.csv"}), r"/nonexistent/corpus\.csv"),
    # ---- ilm_split: params
    row("ilm_split-negative-fraction", "ilm_split", a_ilm_split, params_only(**{"ilm.data.valid_fraction": -0.1}),
        P.format(r"ilm\.data\.valid_fraction")),
    row("ilm_split-negative-sample-size", "ilm_split", a_ilm_split, params_only(**{"ilm.data.sample_size": -5}),
        P.format(r"ilm\.data\.sample_size")),
    row("ilm_split-wrong-type", "ilm_split", a_ilm_split, params_only(**{"ilm.data.strict_labels": "yes please"}),
        P.format(r"ilm\.data\.strict_labels")),
    row("ilm_split-unknown-key", "ilm_split", a_ilm_split, params_only(**{"ilm.data.text_column": "text"}),
        P.format(r"ilm\.data\.text_column")),
    # ---- ilm_mask
    row("ilm_mask-non-utf8-split", "ilm_mask", a_ilm_mask, ilm_splits_dir(b"caf\xe9 au lait.\n\n\nSecond."),
        r"train\.txt:1:4"),
    row("ilm_mask-missing-split", "ilm_mask", a_ilm_mask,
        lambda c: (ilm_splits_dir()(c), (c.tmp / "in" / "splits" / "valid.txt").unlink()), r"valid\.txt"),
    row("ilm_mask-docs-meta-mismatch", "ilm_mask", a_ilm_mask, ilm_splits_dir(b"Only one document here."),
        r"train\.txt"),
    row("ilm_mask-negative-prob", "ilm_mask", a_ilm_mask,
        both(ilm_splits_dir(), params_only(**{"ilm.mask.p_word": -0.5})), P.format(r"ilm\.mask\.p_word")),
    row("ilm_mask-zero-examples", "ilm_mask", a_ilm_mask,
        both(ilm_splits_dir(), params_only(**{"ilm.mask.examples_per_document": {"train": 0, "valid": 1, "test": 1}})),
        r"key 'ilm\.mask\.examples_per_document"),
    row("ilm_mask-unknown-key", "ilm_mask", a_ilm_mask,
        both(ilm_splits_dir(), params_only(**{"ilm.mask.p_char": 0.1})), P.format(r"ilm\.mask\.p_char")),
    # ---- tokenizers (shared script stages/tokenizer.py: ilm_tokenizer, ens_tokenizer, wl_tokenizer, mono_tokenizer)
    row("ilm_tokenizer-non-utf8", "tokenizer", tokenizer_argv("ilm", "corpus.txt"),
        text_file("corpus.txt", b"good line\nbad \xff byte\n"), r"corpus\.txt:2:5"),
    row("ilm_tokenizer-csv-missing-column", "tokenizer", tokenizer_argv("ilm", "corpus.csv"),
        text_file("corpus.csv", "id,body\n1,hello\n"), r"corpus\.csv.*'text'.*set ilm\.tokenizer\.text_fields"),
    row("ilm_tokenizer-vocab-too-small", "tokenizer", tokenizer_argv("ilm", "corpus.txt"),
        both(text_file("corpus.txt", GOOD_TEXT), params_only(**{"ilm.tokenizer.vocab_size": 0})),
        P.format(r"ilm\.tokenizer\.vocab_size")),
    row("ens_tokenizer-broken-jsonl", "tokenizer", tokenizer_argv("ensemble", "data.jsonl", "--model-key",
                                                                          "tokenizer_model"),
        text_file("data.jsonl", jsonl(INSTR, '{"instruction": "x", "input": ')), r"data\.jsonl:2:\d+"),
    row("wl_tokenizer-unknown-key", "tokenizer", tokenizer_argv("weighted", "data.jsonl"),
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(**{"weighted.tokenizer.vocab": 5})),
        P.format(r"weighted\.tokenizer\.vocab")),
    row("mono_tokenizer-model-wrong-type", "tokenizer", tokenizer_argv("monotonic", "data.jsonl"),
        both(text_file("data.jsonl", jsonl(TEXT_ROW)), params_only(**{"monotonic.model.n_layer": "two"})),
        P.format(r"monotonic\.model\.n_layer")),
    # ---- ilm_train (must fail before loading any model)
    row("ilm_train-corrupt-pickle", "ilm_train", a_ilm_train, pickles(b"\x80\x05not a pickle"), r"train\.pkl"),
    row("ilm_train-malicious-pickle", "ilm_train", a_ilm_train, pickles(malicious_pickle()), r"train\.pkl.*system"),
    row("ilm_train-wrong-structure", "ilm_train", a_ilm_train, pickles(__import__("pickle").dumps({"a": 1})),
        r"train\.pkl"),
    row("ilm_train-zero-steps", "ilm_train", a_ilm_train,
        both(pickles(__import__("pickle").dumps([])), params_only(**{"ilm.train.trainer.max_steps": 0})),
        P.format(r"ilm\.train\.trainer\.max_steps")),
    row("ilm_train-negative-batch", "ilm_train", a_ilm_train,
        both(pickles(__import__("pickle").dumps([])), params_only(**{"ilm.train.trainer.batch_size": -8})),
        P.format(r"ilm\.train\.trainer\.batch_size")),
    row("ilm_train-model-unknown-key", "ilm_train", a_ilm_train,
        both(pickles(__import__("pickle").dumps([])), params_only(**{"ilm.model.layers": 2})),
        P.format(r"ilm\.model\.layers")),
    # ---- ilm_eval
    row("ilm_eval-empty-test", "ilm_eval", a_ilm_eval, pickles(__import__("pickle").dumps([]), "test.pkl"),
        r"test\.pkl"),
    row("ilm_eval-corrupt-test", "ilm_eval", a_ilm_eval, pickles(b"garbage", "test.pkl"), r"test\.pkl"),
    row("ilm_eval-zero-batch", "ilm_eval", a_ilm_eval, params_only(**{"ilm.eval.batch_size": 0}),
        P.format(r"ilm\.eval\.batch_size")),
    # ---- ilm_infill_eval (CSV read before any model)
    row("ilm_infill_eval-missing-column", "ilm_infill_eval", a_ilm_infill,
        ilm_csv("id,level,text\n1,A1,hello there\n"), r"corpus\.csv.*'cefr'"),
    row("ilm_infill_eval-non-utf8", "ilm_infill_eval", a_ilm_infill, ilm_csv(BAD_UTF8), r"corpus\.csv:2:\d+"),
    row("ilm_infill_eval-zero-masks", "ilm_infill_eval", a_ilm_infill, params_only(**{"ilm.infill_eval.n_masks": 0}),
        P.format(r"ilm\.infill_eval\.n_masks")),
    # ---- ens_sample
    row("ens_sample-zero-rows", "ens_sample", a_ens_sample, params_only(**{"ensemble.sample.n_rows": 0}),
        P.format(r"ensemble\.sample\.n_rows")),
    row("ens_sample-unknown-key", "ens_sample", a_ens_sample, params_only(**{"ensemble.sample.rows": 5}),
        P.format(r"ensemble\.sample\.rows")),
    # ---- ens_split: instruction JSONL
    row("ens_split-broken-line", "ens_split", a_ens_split,
        text_file("data.jsonl", jsonl(INSTR, INSTR, '{"instruction": "x",, }')), r"data\.jsonl:3:\d+"),
    row("ens_split-missing-field", "ens_split", a_ens_split,
        text_file("data.jsonl", jsonl(INSTR, json.dumps({"instruction": "x", "input": "y"}))),
        r"data\.jsonl:2:1.*'output'"),
    row("ens_split-wrong-type", "ens_split", a_ens_split,
        text_file("data.jsonl", jsonl(INSTR, json.dumps({"instruction": "x", "input": 3, "output": "z"}))),
        r"data\.jsonl:2:1.*'input'"),
    row("ens_split-empty-file", "ens_split", a_ens_split, text_file("data.jsonl", ""), r"data\.jsonl.*no rows"),
    row("ens_split-whitespace-output", "ens_split", a_ens_split,
        text_file("data.jsonl", jsonl(INSTR, json.dumps({"instruction": "x", "input": "y", "output": "  "}))),
        r"data\.jsonl.*'output'"),
    row("ens_split-non-utf8", "ens_split", a_ens_split, text_file("data.jsonl", b'{"a": "\xff"}\n'),
        r"data\.jsonl:1:\d+"),
    row("ens_split-negative-fraction", "ens_split", a_ens_split,
        both(text_file("data.jsonl", jsonl(INSTR)), params_only(**{"ensemble.data.test_fraction": -0.2})),
        P.format(r"ensemble\.data\.test_fraction")),
    # ---- ens_train
    row("ens_train-broken-line", "ens_train", a_ens_train,
        text_file("data.jsonl", jsonl(INSTR, "{not json")), r"data\.jsonl:2:\d+"),
    row("ens_train-zero-steps", "ens_train", a_ens_train,
        both(text_file("data.jsonl", jsonl(INSTR)), params_only(**{"ensemble.models.causal.training.max_steps": 0})),
        P.format(r"ensemble\.models\.causal\.training\.max_steps")),
    row("ens_train-unknown-key", "ens_train", a_ens_train,
        both(text_file("data.jsonl", jsonl(INSTR)), params_only(**{"ensemble.models.causal.epochs": 3})),
        P.format(r"ensemble\.models\.causal\.epochs")),
    # ---- ens_compare
    row("ens_compare-missing-field", "ens_compare", a_ens_compare,
        text_file("data.jsonl", jsonl(json.dumps({"instruction": "x", "output": "y"}))), r"data\.jsonl:1:1.*'input'"),
    row("ens_compare-negative-batch", "ens_compare", a_ens_compare,
        both(text_file("data.jsonl", jsonl(INSTR)), params_only(**{"ensemble.compare.batch_size": -1})),
        P.format(r"ensemble\.compare\.batch_size")),
    row("ens_compare-unknown-judge", "ens_compare", a_ens_compare,
        both(text_file("data.jsonl", jsonl(INSTR)), params_only(**{"ensemble.judge": "bert"})),
        P.format(r"ensemble\.judge") + ".*'minilm', 'none'"),
    row("ens_compare-seed-wrong-type", "ens_compare", a_ens_compare,
        both(text_file("data.jsonl", jsonl(INSTR)), params_only(seed=1.5)), P.format("seed")),
    row("ens_compare-model-unknown-key", "ens_compare", a_ens_compare,
        both(text_file("data.jsonl", jsonl(INSTR)), params_only(**{"ensemble.models.causal.epochs": 3})),
        P.format(r"ensemble\.models\.causal\.epochs")),
    # ---- wl_sample
    row("wl_sample-zero-pool", "wl_sample", a_wl_sample, params_only(**{"weighted.sample.n_pool": 0}),
        P.format(r"weighted\.sample\.n_pool")),
    row("wl_sample-wrong-type", "wl_sample", a_wl_sample,
        params_only(**{"weighted.sample.evidence": "strong"}), P.format(r"weighted\.sample\.evidence")),
    # ---- wl_data: decision JSONL
    row("wl_data-broken-line", "wl_data", a_wl_data, text_file("data.jsonl", jsonl(DECISION, "{")),
        r"data\.jsonl:2:\d+"),
    row("wl_data-missing-field", "wl_data", a_wl_data,
        text_file("data.jsonl", jsonl(DECISION, json.dumps({"id": 3}))), r"data\.jsonl:2:1.*'conversations'"),
    row("wl_data-wrong-type", "wl_data", a_wl_data,
        text_file("data.jsonl", jsonl(DECISION, json.dumps({"conversations": "Accept"}))),
        r"data\.jsonl:2:1.*'conversations'"),
    row("wl_data-no-decision", "wl_data", a_wl_data,
        text_file("data.jsonl", jsonl(DECISION, DECISION.replace("\\\\boxed{Accept}", "maybe"))), r"data\.jsonl:2:1"),
    row("wl_data-empty-file", "wl_data", a_wl_data, text_file("data.jsonl", "\n  \n"),
        r"data\.jsonl.*no rows"),
    row("wl_data-zero-rows", "wl_data", a_wl_data,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(**{"weighted.sets.n_rows": 0})),
        P.format(r"weighted\.sets\.n_rows")),
    row("wl_data-odds-out-of-range", "wl_data", a_wl_data,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(**{"weighted.sets.odds": {"none": [1, 0]}})),
        r"key 'weighted\.sets\.odds"),
    row("wl_data-config-unknown-set", "wl_data", a_wl_data,
        both(text_file("data.jsonl", jsonl(DECISION)),
             params_only(**{"weighted.configs.odds_1_2-baseline": {"set": "odds_9", "variant": "accept",
                                                                   "gamma_key": "weighted.baseline_gamma"}})),
        P.format(r"weighted\.configs\.odds_1_2-baseline\.set") + ".*unknown set"),
    row("wl_data-configs-empty", "wl_data", a_wl_data,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(**{"weighted.configs": {}})),
        P.format(r"weighted\.configs")),
    # ---- wl_train (gamma before any model)
    row("wl_train-gamma-zero", "wl_train", a_wl_train,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(gamma=0.0)), P.format("gamma") + ".*> 0"),
    row("wl_train-gamma-negative", "wl_train", a_wl_train,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(gamma=-4.0)), P.format("gamma") + ".*> 0"),
    row("wl_train-gamma-wrong-type", "wl_train", a_wl_train,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(gamma="four")), P.format("gamma")),
    row("wl_train-bad-variant", "wl_train", a_wl_train,
        both(text_file("data.jsonl", jsonl(DECISION)),
             params_only(**{"weighted.configs.odds_1_2-accept": {"set": "odds_1_2", "variant": "both",
                                                                 "gamma_key": "gamma"}})),
        P.format(r"weighted\.configs\.odds_1_2-accept\.variant")),
    row("wl_train-seed-wrong-type", "wl_train", a_wl_train,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(seed="zero")), P.format("seed")),
    row("wl_train-baseline-gamma-bool", "wl_train", a_wl_train,
        both(text_file("data.jsonl", jsonl(DECISION)),
             params_only(**{"weighted.configs.odds_1_2-accept": {"set": "odds_1_2", "variant": "accept",
                                                                 "gamma_key": "weighted.baseline_gamma"},
                            "weighted.baseline_gamma": True})),
        P.format(r"weighted\.baseline_gamma") + ".*expected a number"),
    row("wl_train-zero-batch", "wl_train", a_wl_train,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(**{"weighted.training.batch_size": 0})),
        P.format(r"weighted\.training\.batch_size")),
    row("wl_train-broken-line", "wl_train", a_wl_train, text_file("data.jsonl", jsonl(DECISION, "[1, 2")),
        r"data\.jsonl:2:\d+"),
    # ---- wl_eval
    row("wl_eval-missing-field", "wl_eval", a_wl_eval,
        text_file("data.jsonl", jsonl(json.dumps({"id": 1}))), r"data\.jsonl:1:1.*'conversations'"),
    row("wl_eval-zero-batch", "wl_eval", a_wl_eval,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(**{"weighted.eval.batch_size": 0})),
        P.format(r"weighted\.eval\.batch_size")),
    row("wl_eval-gamma-wrong-type", "wl_eval", a_wl_eval,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(gamma="four")),
        P.format("gamma") + ".*dvc exp run -S gamma=4.0"),
    row("wl_eval-config-unknown-set", "wl_eval", a_wl_eval,
        both(text_file("data.jsonl", jsonl(DECISION)),
             params_only(**{"weighted.configs.odds_1_2-baseline.set": "odds_9"})),
        P.format(r"weighted\.configs\.odds_1_2-baseline\.set")),
    row("wl_eval-odds-wrong-type", "wl_eval", a_wl_eval,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(**{"weighted.sets.odds": [0.5]})),
        P.format(r"weighted\.sets\.odds")),
    row("wl_eval-grid-unknown-set", "wl_eval", a_wl_eval,
        both(text_file("data.jsonl", jsonl(DECISION)), params_only(**{"weighted.grid.gammas": {"odds_9": [2.0]}})),
        P.format(r"weighted\.grid\.gammas\.odds_9") + ".*unknown set"),
    # ---- mono_sample
    row("mono_sample-too-few", "mono_sample", a_mono_sample, params_only(**{"monotonic.sample.n_documents": -3}),
        P.format(r"monotonic\.sample\.n_documents")),
    # ---- mono_split: text / CSV / JSONL corpus
    row("mono_split-non-utf8", "mono_split", a_mono_split,
        text_file("general.txt", b"A fine first line of text.\nA bad \xfe byte here.\n", "monotonic.data.text"),
        r"general\.txt:2:7"),
    row("mono_split-only-whitespace", "mono_split", a_mono_split,
        text_file("general.txt", "   \n\t\n \n", "monotonic.data.text"), r"general\.txt"),
    row("mono_split-csv-missing-column", "mono_split", a_mono_split,
        text_file("general.csv", "body\nhello world\n", "monotonic.data.text"),
        r"general\.csv.*'text'.*set monotonic\.data\.text_fields"),
    row("mono_split-csv-multiline-quoted", "mono_split", a_mono_split,
        text_file("general.csv", MONO_CSV * 1 + "".join(f'"Document number {i} is here, fine.",z\n'
                                                         for i in range(40)), "monotonic.data.text"), None),
    row("mono_split-1mb-document", "mono_split", a_mono_split,
        text_file("general.txt", ONE_MB + "\n" + "".join(f"Document number {i} is here.\n" for i in range(40)),
                  "monotonic.data.text"), None),
    row("mono_split-jsonl-broken", "mono_split", a_mono_split,
        text_file("general.jsonl", jsonl(TEXT_ROW, '{"text": "unterminated'), "monotonic.data.text"),
        r"general\.jsonl:2:\d+"),
    row("mono_split-negative-fraction", "mono_split", a_mono_split,
        params_only(**{"monotonic.data.valid_fraction": -0.5}), P.format(r"monotonic\.data\.valid_fraction")),
    row("mono_split-zero-block", "mono_split", a_mono_split, params_only(**{"monotonic.data.block_size": 0}),
        P.format(r"monotonic\.data\.block_size")),
    # ---- mono_pretrain / mono_train / mono_eval / mono_attack
    row("mono_pretrain-broken-split", "mono_pretrain", a_mono_pretrain, mono_splits(train=jsonl(TEXT_ROW, "{")),
        r"train\.jsonl:2:\d+"),
    row("mono_pretrain-zero-steps", "mono_pretrain", a_mono_pretrain,
        both(mono_splits(), params_only(**{"monotonic.pretrain.training.max_steps": 0})),
        P.format(r"monotonic\.pretrain\.training\.max_steps")),
    row("mono_train-missing-field", "mono_train", a_mono_train,
        mono_splits(valid=jsonl(json.dumps({"body": "x"}))), r"valid\.jsonl:1:1.*'text'"),
    row("mono_train-bad-constraint", "mono_train", a_mono_train,
        both(mono_splits(), params_only(**{"monotonic.constraint.scope": "everything"})),
        P.format(r"monotonic\.constraint\.scope")),
    row("mono_train-negative-lr", "mono_train", a_mono_train,
        both(mono_splits(), params_only(**{"monotonic.arms.monotonic.training.lr": -1.0})),
        P.format(r"monotonic\.arms\.monotonic\.training\.lr")),
    row("mono_eval-wrong-type", "mono_eval", a_mono_eval,
        mono_splits(valid=jsonl(json.dumps({"text": 42}))), r"test\.jsonl:1:1.*'text'"),
    row("mono_eval-zero-batch", "mono_eval", a_mono_eval,
        both(mono_splits(), params_only(**{"monotonic.eval.batch_size": 0})), P.format(r"monotonic\.eval\.batch_size")),
    row("mono_attack-empty-split", "mono_attack", a_mono_attack, mono_splits(valid=""), r"valid\.jsonl.*no rows"),
    row("mono_attack-zero-candidates", "mono_attack", a_mono_attack,
        both(mono_splits(), params_only(**{"monotonic.attack.uat.candidates": 0})),
        P.format(r"monotonic\.attack\.uat\.candidates")),
    # ---- report
    row("report-broken-json", "report", a_report, text_file("ilm.json", '{"ppl": {"A1": 3.2,, }}'),
        r"ilm\.json:1:\d+"),
    row("report-non-utf8", "report", a_report, text_file("ilm.json", b'{"a": "\xff"}'), r"ilm\.json:1:\d+"),
]


@pytest.mark.parametrize(("stage", "argv_builder", "bad_input_writer", "expected"), CASES)
def test_stage_rejects_bad_input_cleanly(stage: str, argv_builder, bad_input_writer, expected: str | None,
                                          tmp_path: Path, nltk_data: Path, tokenizer_dir: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    main = importlib.import_module(f"stages.{stage}").main
    ctx = Ctx(tmp=tmp_path, nltk=nltk_data, tokenizer=tokenizer_dir)
    bad_input_writer(ctx)
    params = write_ctx_params(ctx)
    argv, outputs = argv_builder(ctx)
    caplog.set_level(logging.INFO)
    code = main(["--params", str(params), *argv])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    log = "\n".join(r.getMessage() for r in errors)

    if expected is None:
        assert code == 0, f"{stage} must accept this input; log:\n{log}"
        assert all(Path(o).exists() for o in outputs), outputs
        return

    assert code == 2, f"{stage} returned {code}; log:\n{caplog.text[-3000:]}"
    assert len(errors) == 1, f"expected one error paragraph, got {len(errors)}:\n{log}"
    message = errors[0].getMessage()
    assert errors[0].exc_info is None and "Traceback" not in message, message
    assert "\n\n" not in message.strip(), f"not one paragraph:\n{message}"
    assert re.search(expected, message, flags=re.DOTALL), f"{expected!r} not in:\n{message}"
    for out in outputs:
        assert not Path(out).exists(), f"{out} exists after a failed run"
        leftovers = list(Path(out).parent.glob(f".{Path(out).name}.tmp-*")) if Path(out).parent.exists() else []
        assert not leftovers, leftovers
    assert not Path("/tmp/lmlab-pwned").exists(), "a pickle payload ran"
