"""Infill metrics against values computed by hand from the write-up's definitions (000, "Evaluation Metrics")."""

from __future__ import annotations

import pytest

from lmlab.ilm.infill_metrics import (
    ALL_METRIC_NAMES,
    aggregate,
    char_ngrams,
    normalize,
    span_scores,
    tokenize,
)


def test_normalize_and_character_ngrams():
    assert normalize("  The\u00a0 CAT\n") == "the cat"
    assert normalize("ｆｕｌｌ") == "full"  # NFKC folds full-width letters
    assert char_ngrams("cat", 1) == ["c", "a", "t"]
    assert char_ngrams("cat", 2) == ["ca", "at"]
    assert char_ngrams("I", 2) == []


def test_exact_match_ignores_case_and_outer_spacing():
    s = span_scores(" The  Cat", "the cat")
    assert s.top1_accuracy == 1.0
    assert (s.unigram_recall, s.unigram_f1, s.bigram_recall, s.bigram_f1) == (1.0, 1.0, 1.0, 1.0)


def test_character_unigrams_and_bigrams_as_sets_hand_computed():
    # ref "hello": chars {h,e,l,o} (4 distinct), bigrams {he,el,ll,lo} (4)
    # pred "help": chars {h,e,l,p} -> 3 shared: R = 3/4, P = 3/4, F1 = 3/4
    #              bigrams {he,el,lp} -> 2 shared: R = 2/4, P = 2/3, F1 = 2*(1/2)(2/3)/(1/2+2/3) = 4/7
    s = span_scores("help", "hello")
    assert s.top1_accuracy == 0.0
    assert s.unigram_recall == pytest.approx(3 / 4)
    assert s.unigram_f1 == pytest.approx(3 / 4)
    assert s.bigram_recall == pytest.approx(1 / 2)
    assert s.bigram_f1 == pytest.approx(4 / 7)


def test_character_overlap_as_multisets_hand_computed():
    # ref "hello": 5 chars (l twice); pred "help": 4 chars; clipped overlap h,e,l = 3
    # R = 3/5, P = 3/4, F1 = 2*(3/5)(3/4)/(3/5+3/4) = 2/3; bigrams as above (no repeats): R = 1/2, F1 = 4/7
    s = span_scores("help", "hello", overlap="multiset")
    assert s.unigram_recall == pytest.approx(3 / 5)
    assert s.unigram_f1 == pytest.approx(2 / 3)
    assert s.bigram_recall == pytest.approx(1 / 2)
    assert s.bigram_f1 == pytest.approx(4 / 7)
    # "aaaa" vs "a": the set view sees one shared character, the multiset view clips it
    assert span_scores("aaaa", "a").unigram_f1 == 1.0
    assert span_scores("aaaa", "a", overlap="multiset").unigram_f1 == pytest.approx(2 * 0.25 / 1.25)


def test_anagram_shares_every_character_but_no_bigram():
    s = span_scores("act", "cat")
    assert (s.top1_accuracy, s.unigram_recall, s.unigram_f1) == (0.0, 1.0, 1.0)
    assert (s.bigram_recall, s.bigram_f1) == (0.0, 0.0)  # {ac, ct} vs {ca, at}


def test_long_unterminated_answer_keeps_recall_and_loses_precision():
    # ref "to": chars {t,o}, bigram {to}; pred "to the other": chars {t,o,' ',h,e,r} (6),
    # bigrams {to,'o ',' t',th,he,'e ',' o',ot,er} (9 distinct)
    s = span_scores(" to the other", "to")
    assert s.unigram_recall == 1.0 and s.unigram_f1 == pytest.approx(2 * (1 / 3) / (4 / 3))
    assert s.bigram_recall == 1.0 and s.bigram_f1 == pytest.approx(2 * (1 / 9) / (10 / 9))


def test_one_character_reference_bigrams_are_its_exact_match():
    assert span_scores(" I", "I").bigram_recall == 1.0
    wrong = span_scores("a", "I")
    assert (wrong.unigram_recall, wrong.bigram_recall, wrong.bigram_f1) == (0.0, 0.0, 0.0)
    assert span_scores("I am", "I").bigram_recall == 0.0


def test_empty_prediction_scores_zero():
    assert set(span_scores("", "house").as_dict().values()) == {0.0}
    assert set(span_scores("   ", "house").as_dict().values()) == {0.0}
    assert span_scores("", "").top1_accuracy == 1.0
    with pytest.raises(ValueError, match="overlap"):
        span_scores("a", "a", overlap="bag")  # type: ignore[arg-type]


def test_word_level_scores_are_kept():
    assert tokenize("  Don't STOP!  ") == ["don", "'", "t", "stop", "!"]
    # ref: a b c (3 unigrams; bigrams <s>a ab bc c</s>); pred: a c c d
    s = span_scores("a c c d", "a b c")
    # clipped overlap a, c = 2 -> R = 2/3, P = 2/4, F1 = 4/7
    assert s.word_unigram_recall == pytest.approx(2 / 3)
    assert s.word_unigram_f1 == pytest.approx(4 / 7)
    # pred bigrams <s>a ac cc cd d</s>: only <s>a matches -> R = 1/4, P = 1/5, F1 = 2/9
    assert s.word_bigram_recall == pytest.approx(1 / 4)
    assert s.word_bigram_f1 == pytest.approx(2 / 9)
    # word level: "the cat" vs "cat" -> <s>cat, cat</s> vs <s>the, the cat, cat</s>: R = 1/2
    assert span_scores("the cat", "cat").word_bigram_recall == pytest.approx(0.5)


def test_aggregate_is_micro_mean_over_spans():
    scores = [span_scores("a", "a"), span_scores("b", "a"), span_scores("ab", "ac")]
    agg = aggregate(scores)
    assert agg["n"] == 3
    assert agg["top1_accuracy"] == pytest.approx(1 / 3)
    # "ab" vs "ac": chars {a,b} vs {a,c} -> R = 1/2
    assert agg["unigram_recall"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert aggregate([]) == {**{name: 0.0 for name in ALL_METRIC_NAMES}, "n": 0}
