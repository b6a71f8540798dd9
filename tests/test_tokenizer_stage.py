"""Stage `<family>_tokenizer`: trained BPE for tiny bases, special tokens, strict params."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer

from stages.tokenizer import main
from tests.conftest import write_params


def _params(tmp_path: Path, **extra: object) -> Path:
    """Params of a made-up family ``fam`` (the stage takes any ``--section``); ``extra`` joins its tokenizer."""
    fam = {"tokenizer": {"vocab_size": 320, "special_tokens": ["<|a|>", "<|b|>"], **extra},
           "model": {"name": "tiny-gpt2", "max_positions": 64}}
    return write_params(tmp_path / "params.yaml", {"fam": fam}, sections=())


def test_stage_trains_and_saves_tokenizer(tmp_path: Path, tiny_texts: list[str]) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(tiny_texts))
    out = tmp_path / "tok"
    assert main(["--params", str(_params(tmp_path)), "--section", "fam", "--corpus", str(corpus), "--out", str(out)]) == 0
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert "<|a|>" in tokenizer.get_vocab() and tokenizer.model_max_length == 64
    assert json.loads((out / "params.json").read_text())["base_model"] == "tiny-gpt2"


def test_stage_rejects_unknown_key_and_writes_nothing(tmp_path: Path, tiny_texts: list[str], caplog) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(tiny_texts))
    out = tmp_path / "tok"
    params = _params(tmp_path, vocab=3)
    assert main(["--params", str(params), "--section", "fam", "--corpus", str(corpus), "--out", str(out)]) == 2
    assert "fam.tokenizer.vocab" in caplog.text and "unknown parameter" in caplog.text
    assert not out.exists()
