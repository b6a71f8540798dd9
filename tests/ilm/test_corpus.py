"""The embedded learner corpus: determinism, CEFR/L1 mixes, level differences, the ilm_sample stage."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from lmlab.ilm.corpus import COLUMNS, generate_learner_corpus, largest_remainder
from lmlab.ilm.splitting import LEVELS
from lmlab.ilm.templates import CEFR_MIX, L1_MIX
from stages.ilm_sample import main
from tests.conftest import write_params

# Errors the generator inserts; correct templates never contain these strings.
ERROR_MARKERS = re.compile(r"\bI am agree\b|\binformations\b|\badvices\b|\bsince (?:two|three|five|six|ten|many) years\b"
                           r"|\bI have \d+ years\b|\b(?:he|she|He|She) (?:go|have|like|work|watch)\b|\bbecouse\b"
                           r"|\bI very (?:like|love|want|enjoy)\b|\bpeople is\b|\bmore better\b|(?<= )i(?= )")


@pytest.fixture(scope="module")
def corpus() -> pd.DataFrame:
    return generate_learner_corpus(4000, seed=0)


def test_largest_remainder_sums_and_is_proportional() -> None:
    counts = largest_remainder(CEFR_MIX, 36000)
    assert sum(counts.values()) == 36000
    assert counts == {"A1": 16920, "A2": 10800, "B1": 5760, "B2": 2016, "C1": 504}
    odd = largest_remainder({"a": 1, "b": 1, "c": 1}, 4)
    assert sorted(odd.values()) == [1, 1, 2] and sum(odd.values()) == 4


def test_default_size_gives_every_level_a_test_split_of_50() -> None:
    counts = largest_remainder(CEFR_MIX, 36000)
    assert min(round(n * 0.1) for n in counts.values()) >= 50


def test_same_seed_same_table_other_seed_other_table() -> None:
    a = generate_learner_corpus(300, seed=7).to_csv(index=False)
    b = generate_learner_corpus(300, seed=7).to_csv(index=False)
    c = generate_learner_corpus(300, seed=8).to_csv(index=False)
    assert a == b
    assert a != c


def test_columns_ids_and_unique_texts(corpus: pd.DataFrame) -> None:
    assert tuple(corpus.columns) == COLUMNS
    assert corpus["id"].is_unique
    assert corpus["text"].is_unique
    assert (corpus["n_words"] == corpus["text"].str.split().str.len()).all()
    assert not corpus["text"].str.contains("\n\n").any()
    assert (corpus["text"] == corpus["text"].str.strip()).all()


def test_cefr_and_l1_mix(corpus: pd.DataFrame) -> None:
    n = len(corpus)
    by_level = corpus["cefr"].value_counts()
    for level, share in CEFR_MIX.items():
        assert abs(by_level[level] - share * n) <= 1
    l1_total = sum(L1_MIX.values())
    for level in LEVELS:
        sub = corpus[corpus["cefr"] == level]
        l1 = sub["l1"].value_counts()
        for lang, share in L1_MIX.items():  # exact up to rounding inside every level
            assert abs(l1.get(lang, 0) - share / l1_total * len(sub)) <= 1, (level, lang)


def test_text_differs_by_level_like_learner_writing(corpus: pd.DataFrame) -> None:
    words = corpus.groupby("cefr")["n_words"].mean()
    assert list(words[list(LEVELS)]) == sorted(words[list(LEVELS)])
    assert words["C1"] > 3 * words["A1"]
    sentence_len = corpus.groupby("cefr")["text"].apply(
        lambda t: t.str.split().str.len().sum() / t.str.count(r"[.!?](\s|$)").clip(lower=1).sum())
    assert sentence_len["C1"] > 1.5 * sentence_len["A1"]
    hits = corpus["text"].str.count(ERROR_MARKERS).groupby(corpus["cefr"]).sum()
    per_100_words = hits / corpus.groupby("cefr")["n_words"].sum() * 100
    assert per_100_words["A1"] > per_100_words["B1"] > per_100_words["C1"]
    assert per_100_words["A1"] > 5 * per_100_words["C1"]
    vocab = {lv: set(" ".join(corpus.loc[corpus.cefr == lv, "text"].head(40)).lower().split()) for lv in LEVELS}
    assert len(vocab["C1"]) > 2 * len(vocab["A1"])
    multi = corpus["text"].str.contains("\n").groupby(corpus["cefr"]).mean()
    assert multi["C1"] == 1.0 and 0.2 < multi["A1"] < 1.0


def test_l1_specific_errors(corpus: pd.DataFrame) -> None:
    romance = corpus[corpus.l1.isin(["Portuguese", "Spanish", "Italian", "French"]) & (corpus.cefr == "A1")]
    asian = corpus[corpus.l1.isin(["Mandarin", "Japanese"]) & (corpus.cefr == "A1")]
    have_years = re.compile(r"\bI have \d+ years\b")
    assert romance.text.str.contains(have_years).mean() > asian.text.str.contains(have_years).mean()
    very_like = re.compile(r"\bI very (?:like|love|want|enjoy)\b")
    assert asian.text.str.contains(very_like).mean() > romance.text.str.contains(very_like).mean()


def _params(tmp_path: Path, n: int) -> Path:
    return write_params(tmp_path / "params.yaml", {"seed": 3, "ilm.sample.n_documents": n},
                        sections=("seed", "ilm.sample"))


def test_stage_writes_the_csv_deterministically(tmp_path: Path) -> None:
    params, out = _params(tmp_path, 200), tmp_path / "sample" / "corpus.csv"
    assert main(["--params", str(params), "--out", str(out)]) == 0
    first = out.read_bytes()
    table = pd.read_csv(out, keep_default_na=False)
    assert tuple(table.columns) == COLUMNS and len(table) == 200
    assert table["text"].str.contains("\n").any()  # multi-paragraph texts survive the CSV round trip
    assert main(["--params", str(params), "--out", str(out)]) == 0
    assert out.read_bytes() == first
    assert [p.name for p in out.parent.iterdir()] == ["corpus.csv"]


def test_stage_rejects_a_bad_parameter(tmp_path: Path) -> None:
    out = tmp_path / "corpus.csv"
    assert main(["--params", str(_params(tmp_path, 5)), "--out", str(out)]) == 2
    assert not out.exists()
