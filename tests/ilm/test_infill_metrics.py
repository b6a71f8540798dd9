"""Infill metrics against hand-computed values."""

from __future__ import annotations

import pytest

from lmlab.ilm.infill_metrics import aggregate, span_scores, tokenize


def test_tokenize_normalises_case_unicode_and_splits_punctuation():
    assert tokenize("  Don't STOP!  ") == ["don", "'", "t", "stop", "!"]
    assert tokenize("ｆｕｌｌ-width") == ["full", "-", "width"]  # NFKC folds full-width letters
    assert tokenize("") == []


def test_exact_match_ignores_case_and_spacing():
    s = span_scores(" The Cat", "the cat")
    assert s.as_dict() == {"top1_accuracy": 1.0, "unigram_recall": 1.0, "unigram_f1": 1.0,
                           "bigram_recall": 1.0, "bigram_f1": 1.0}


def test_partial_overlap_hand_computed():
    # ref: a b c (3 unigrams; bigrams <s>a ab bc c</s>); pred: a c c d
    s = span_scores("a c c d", "a b c")
    assert s.top1_accuracy == 0.0
    # clipped overlap a, c = 2 -> R = 2/3, P = 2/4, F1 = 2*0.5*(2/3)/(0.5+2/3) = 4/7
    assert s.unigram_recall == pytest.approx(2 / 3)
    assert s.unigram_f1 == pytest.approx(4 / 7)
    # pred bigrams <s>a ac cc cd d</s>: only <s>a matches -> R = 1/4, P = 1/5, F1 = 2/9
    assert s.bigram_recall == pytest.approx(1 / 4)
    assert s.bigram_f1 == pytest.approx(2 / 9)


def test_one_word_span_bigrams_use_boundaries():
    s = span_scores("the cat", "cat")
    assert s.unigram_recall == 1.0 and s.unigram_f1 == pytest.approx(2 / 3)
    # ref <s>cat cat</s>; pred <s>the the_cat cat</s> -> overlap 1: R = 1/2, P = 1/3, F1 = 0.4
    assert s.bigram_recall == pytest.approx(0.5)
    assert s.bigram_f1 == pytest.approx(0.4)


def test_empty_prediction_scores_zero():
    assert set(span_scores("", "house").as_dict().values()) == {0.0}
    assert span_scores("", "").top1_accuracy == 1.0


def test_aggregate_is_micro_mean_over_spans():
    scores = [span_scores("a", "a"), span_scores("b", "a"), span_scores("a b", "a c")]
    agg = aggregate(scores)
    assert agg["n"] == 3
    assert agg["top1_accuracy"] == pytest.approx(1 / 3)
    assert agg["unigram_recall"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert aggregate([]) == {"top1_accuracy": 0.0, "unigram_recall": 0.0, "unigram_f1": 0.0,
                             "bigram_recall": 0.0, "bigram_f1": 0.0, "n": 0}
