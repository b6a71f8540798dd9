"""Voting with ties, Cohen's and Fleiss' kappa on hand-computed examples (exact fractions)."""

from __future__ import annotations

import random
import warnings

import pytest
from sklearn.metrics import cohen_kappa_score

from lmlab.ensemble.agreement import (
    INVALID,
    cohen_kappa,
    fleiss_kappa,
    fleiss_table,
    full_agreement,
    majority_vote,
    pairwise_agreement,
)


def test_vote_two_models():
    assert majority_vote(["A", "A"]).status == "unanimous"
    tie = majority_vote(["A", "B"])
    assert tie.label is None and tie.status == "tie" and tie.winners == ("A", "B")
    assert tie.tiebreak_label == "A"
    assert majority_vote(["A", "B"], priority=[1, 0]).tiebreak_label == "B"
    one = majority_vote([None, "B"])
    assert one.label == "B" and one.status == "plurality"  # 1 of 2 is not a majority
    assert majority_vote([None, None]).status == "no_valid"


def test_vote_three_models():
    assert majority_vote(["A", "A", "B"]).label == "A"
    assert majority_vote(["A", "A", "B"]).status == "majority"
    tie = majority_vote(["A", "B", "C"], priority=[2, 0, 1])
    assert tie.status == "tie" and tie.label is None and tie.tiebreak_label == "C"
    assert majority_vote(["A", None, None]).status == "plurality"
    tie2 = majority_vote(["A", "B", None])
    assert tie2.status == "tie" and set(tie2.winners) == {"A", "B"}
    assert majority_vote(["B", "B", "B"]).status == "unanimous"


def test_full_agreement_needs_valid_labels():
    assert full_agreement(["A", "A", "A"])
    assert not full_agreement([None, None])
    assert not full_agreement(["A", "A", None])


def test_cohen_kappa_matches_sklearn():
    rng = random.Random(0)
    labels = ["A", "B", "C", None]
    for _ in range(20):
        a = [rng.choice(labels) for _ in range(50)]
        b = [x if rng.random() < 0.6 else rng.choice(labels) for x in a]
        expected = cohen_kappa_score([INVALID if x is None else x for x in a], [INVALID if x is None else x for x in b])
        assert cohen_kappa(a, b) == pytest.approx(expected, abs=1e-12)


def test_cohen_kappa_two_raters_hand_computed():
    # a = [A, A, A, B, B, None], b = [A, A, B, B, B, None]: p_o = 5/6 (None == None is INVALID == INVALID);
    # marginals a: A 3, B 2, I 1; b: A 2, B 3, I 1 -> p_e = (6 + 6 + 1) / 36 = 13/36;
    # kappa = (30/36 - 13/36) / (23/36) = 17/23.
    a, b = ["A", "A", "A", "B", "B", None], ["A", "A", "B", "B", "B", None]
    assert cohen_kappa(a, b) == pytest.approx(17 / 23, abs=1e-12)
    assert cohen_kappa(b, a) == pytest.approx(17 / 23, abs=1e-12)
    # The first five items only (no INVALID): p_o = 4/5, p_e = 12/25 -> kappa = (20 - 12) / (25 - 12) = 8/13.
    assert cohen_kappa(a[:5], b[:5]) == pytest.approx(8 / 13, abs=1e-12)


def test_cohen_kappa_degenerate_is_finite():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sklearn UndefinedMetricWarning leaks out
        assert cohen_kappa(["A"] * 5, ["A"] * 5) == 1.0  # sklearn: nan
        assert cohen_kappa([None] * 3, [None] * 3) == 1.0  # both always INVALID
        assert cohen_kappa(["A"] * 3, ["B"] * 3) == 0.0  # p_o = p_e = 0: defined, and 0
        assert cohen_kappa(["A", "A", "B"], ["A", "A", "A"]) == 0.0  # p_o = p_e = 2/3
    assert cohen_kappa(["A", "B"], ["B", "A"]) == pytest.approx(-1.0, abs=1e-12)
    with pytest.raises(ValueError):
        cohen_kappa(["A"], ["A", "B"])


def test_fleiss_small_hand_computed():
    # Subjects rated by 3 raters: [A, A, A] and [A, B, B].
    # P_1 = 1, P_2 = 2/6 -> P = 2/3; p_A = 4/6, p_B = 2/6 -> P_e = 5/9; kappa = (2/3 - 5/9) / (4/9) = 0.25
    table, cats = fleiss_table([["A", "A"], ["A", "B"], ["A", "B"]])
    assert cats == ["A", "B"] and table == [[3, 0], [1, 2]]
    assert fleiss_kappa(table) == pytest.approx(1 / 4, abs=1e-12)


def test_fleiss_textbook_example():
    # Fleiss (1971)-style worked example: 10 subjects, 14 raters, 5 categories.
    # sum_ij n_ij^2 = 828 -> P = (828 - 140) / (10 * 14 * 13) = 688/1820 = 172/455;
    # totals 20, 28, 39, 21, 32 of 140 -> P_e = 4170/19600 = 417/1960; kappa = 0.2099307...
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    p_bar, p_e = 172 / 455, 417 / 1960
    assert fleiss_kappa(table) == pytest.approx((p_bar - p_e) / (1 - p_e), abs=1e-12)
    assert fleiss_kappa(table) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_two_raters_is_scott_pi():
    # The Cohen example above: p_o = 5/6; pooled A 5/12, B 5/12, I 2/12 -> P_e = 54/144 = 3/8;
    # Scott's pi = (5/6 - 3/8) / (5/8) = 11/15 (Cohen's kappa, with per-rater marginals, is 17/23).
    table, cats = fleiss_table([["A", "A", "A", "B", "B", None], ["A", "A", "B", "B", "B", None]])
    assert cats == ["A", "B", INVALID]
    assert table == [[2, 0, 0], [2, 0, 0], [1, 1, 0], [0, 2, 0], [0, 2, 0], [0, 0, 2]]
    assert fleiss_kappa(table) == pytest.approx(11 / 15, abs=1e-12)


def test_fleiss_three_raters_with_invalid_category():
    # Models [A, None, B], [A, None, A], [A, B, B] -> subjects (A, A, A), (I, I, B), (B, A, B).
    # Rows over (A, B, INVALID): [3, 0, 0], [0, 1, 2], [1, 2, 0]: P_i = 1, 1/3, 1/3 -> P = 5/9;
    # totals A 4, B 3, I 2 of 9 -> P_e = 29/81; kappa = (45 - 29) / (81 - 29) = 16/52 = 4/13.
    table, cats = fleiss_table([["A", None, "B"], ["A", None, "A"], ["A", "B", "B"]])
    assert cats == ["A", "B", INVALID] and table == [[3, 0, 0], [0, 1, 2], [1, 2, 0]]
    assert fleiss_kappa(table) == pytest.approx(4 / 13, abs=1e-12)
    assert fleiss_kappa([[3, 0], [3, 0]]) == 1.0  # P_e = 1: defined as perfect agreement
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 0], [1, 0]])


def test_pairwise_agreement():
    # x = [A, B, I], y = [A, C, I], z = [A, B, C]; every rater uses 3 categories once each.
    # x,y: p_o = 2/3 (A; I = I), p_e = 2/9 -> kappa 4/7;  x,z: p_o = 2/3 (A, B), p_e = 2/9 -> 4/7;
    # y,z: p_o = 1/3 (A), p_e = 2/9 -> (1/9) / (7/9) = 1/7. Raw agreement does not count None == None.
    out = pairwise_agreement({"x": ["A", "B", None], "y": ["A", "C", None], "z": ["A", "B", "C"]})
    assert set(out) == {"x__y", "x__z", "y__z"}
    assert out["x__y"]["agreement"] == pytest.approx(1 / 3, abs=1e-12)
    assert out["x__z"]["agreement"] == pytest.approx(2 / 3, abs=1e-12)
    assert out["y__z"]["agreement"] == pytest.approx(1 / 3, abs=1e-12)
    assert out["x__y"]["cohen_kappa"] == pytest.approx(4 / 7, abs=1e-12)
    assert out["x__z"]["cohen_kappa"] == pytest.approx(4 / 7, abs=1e-12)
    assert out["y__z"]["cohen_kappa"] == pytest.approx(1 / 7, abs=1e-12)
