"""Stage `<family>_tokenizer`: trained BPE for tiny bases, special tokens, strict params."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer

from stages.tokenizer import main


def _params(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(
        "fam:\n  tokenizer:\n    vocab_size: 320\n    special_tokens: ['<|a|>', '<|b|>']\n" + extra
        + "  model:\n    name: tiny-gpt2\n    max_positions: 64\n"
    )
    return path


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
    params = _params(tmp_path, extra="    vocab: 3\n")
    assert main(["--params", str(params), "--section", "fam", "--corpus", str(corpus), "--out", str(out)]) == 2
    assert "fam.tokenizer.vocab" in caplog.text and "unknown parameter" in caplog.text
    assert not out.exists()
