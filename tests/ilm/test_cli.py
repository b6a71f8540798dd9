"""The ``lmlab`` command line: ``infill`` (non-interactive and interactive) and ``infill-eval``."""

from __future__ import annotations

import io
import json

import pytest

from lmlab.errors import InputError
from lmlab.ilm.cli import main, placeholders_to_context
from tests.ilm.infill_helpers import ILM_TEXTS, make_ilm_dir


class _Stdin(io.StringIO):
    def __init__(self, text: str, tty: bool) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture(scope="module")
def ilm_dir(tmp_path_factory):
    return make_ilm_dir(tmp_path_factory.mktemp("cli") / "ilm", train_steps=60)


def test_placeholders_to_context():
    assert placeholders_to_context("She ate [MASK] for [mask:SENTENCE]", "word") == \
        "She ate<|infill_word|> for<|infill_sentence|>"
    assert placeholders_to_context("[MASK:ngram] is here.") == "<|infill_ngram|> is here."
    with pytest.raises(InputError, match="unknown placeholder type"):
        placeholders_to_context("a [MASK:verb] b")


def test_infill_text_option_fills_every_placeholder(ilm_dir):
    out = io.StringIO()
    code = main(["infill", "--model", str(ilm_dir), "--device", "cpu", "--threads", "1", "--text", "I live in a [MASK:word] house.",
                 "--text", "No placeholder."], stdin=_Stdin("", False), stdout=out)
    lines = out.getvalue().splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith("I live in a") and lines[0].endswith(" house.") and "[MASK" not in lines[0]
    assert "<|infill_word|>" not in lines[0] or lines[0].count("<|infill_word|>") == 1
    assert lines[1] == "No placeholder."


def test_infill_reads_stdin_lines_when_not_a_tty(ilm_dir):
    out = io.StringIO()
    stdin = _Stdin("My name is [MASK] and I am from [MASK].\n\nDear [MASK], how are you?\n", False)
    assert main(["infill", "--model", str(ilm_dir), "--device", "cpu", "--threads", "1"], stdin=stdin, stdout=out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("My name is") and lines[1].startswith("Dear")
    # same result as --text: one code path
    again = io.StringIO()
    main(["infill", "--model", str(ilm_dir), "--device", "cpu", "--threads", "1", "--text", "Dear [MASK], how are you?"],
         stdin=_Stdin("", False), stdout=again)
    assert again.getvalue().splitlines() == lines[1:]


def test_infill_interactive_loop(ilm_dir):
    out = io.StringIO()
    stdin = _Stdin("I like [MASK].\na [MASK:verb] b\n\n", True)
    assert main(["infill", "--model", str(ilm_dir), "--device", "cpu", "--threads", "1"], stdin=stdin, stdout=out) == 0
    text = out.getvalue()
    assert text.count("text> ") == 3 and "I like" in text and "error: " in text


def test_infill_rejects_a_model_without_special_token_map(tiny_model_dir, capsys):
    assert main(["infill", "--model", str(tiny_model_dir), "--text", "a [MASK]"], stdout=io.StringIO()) == 2
    assert "ilm_special_tokens.json" in capsys.readouterr().err


def test_infill_eval_command(tmp_path, ilm_dir, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("id,cefr,text\n" + "".join(f"{i},{'A1' if i % 2 else 'B1'},\"{t}\"\n"
                                               for i, t in enumerate(ILM_TEXTS)), encoding="utf-8")
    outs = [tmp_path / "e.json", tmp_path / "m.json", tmp_path / "p.jsonl"]
    flags = ["--out", str(outs[0]), "--metrics", str(outs[1]), "--predictions", str(outs[2])]
    out = io.StringIO()
    code = main(["infill-eval", "--csv", str(csv), "--model", f"mine=ilm:{ilm_dir}", "--masking", "random",
                 "--n-masks", "2", "--device", "cpu", "--threads", "1", "--max-new-tokens", "8", *flags], stdout=out)
    assert code == 0 and out.getvalue().startswith("mine: top1")
    metrics = json.loads(outs[1].read_text())
    # the metrics file keeps the overall scores; the per-level grid is in the report (issue 17)
    assert set(metrics["mine"]) == {"all"} and metrics["mine"]["all"]["n"] == 10
    report = json.loads(outs[0].read_text())
    assert set(report["results"]["by_cefr"]["mine"]) == {"A1", "B1"}
    assert len(outs[2].read_text().splitlines()) == 5
    # a CSV without the text column and an impossible option: exit 2, no outputs
    for p in outs:
        p.unlink()
    bad = tmp_path / "bad.csv"
    bad.write_text("id,cefr,body\n1,A1,hello there\n", encoding="utf-8")
    assert main(["infill-eval", "--csv", str(bad), "--model", f"ilm:{ilm_dir}", *flags]) == 2
    assert main(["infill-eval", "--csv", str(csv), "--model", f"ilm:{ilm_dir}", "--n-masks", "0", *flags]) == 2
    assert not any(p.exists() for p in outs)
    assert "not found" in capsys.readouterr().err
