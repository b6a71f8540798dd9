"""Strict readers of user-supplied input files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmlab.errors import InputError
from lmlab.inputs import read_jsonl, read_text_strict


def test_read_text_strict_names_byte_offset_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,cefr\nok,A1\ncaf\xe9,B1\n")
    with pytest.raises(InputError) as info:
        read_text_strict(path)
    message = str(info.value)
    assert "byte offset 19" in message and f"{path}:3:4" in message and "re-encode the file as utf-8." in message
    with pytest.raises(InputError, match="set 'ilm.data.encoding' to its encoding"):
        read_text_strict(path, encoding_key="ilm.data.encoding")
    assert read_text_strict(path, "latin-1").endswith("café,B1\n")


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ('{"a": 1}\n{"a": 2\n', 2, "not valid JSON"),
        ('{"a": 1}\n[1, 2]\n', 2, "expected a JSON object"),
        ('{"a": 1}\n\n{"b": 1}\n', 3, "missing field 'a'"),
        ('{"a": "x"}\n', 1, "must be int"),
    ],
)
def test_read_jsonl_errors_name_line(tmp_path: Path, content: str, line: int, fragment: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        read_jsonl(path, required={"a": int})
    assert info.value.line == line and fragment in str(info.value)


def test_read_jsonl_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(InputError, match="no rows"):
        read_jsonl(path)
    os.remove(path)
    with pytest.raises(InputError, match="not found"):
        read_jsonl(path)
