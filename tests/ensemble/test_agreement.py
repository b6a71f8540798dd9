"""Voting with ties, Cohen's kappa against sklearn, Fleiss' kappa on hand-computed tables."""

from __future__ import annotations

import random

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


def test_cohen_kappa_degenerate_is_finite():
    assert cohen_kappa(["A"] * 5, ["A"] * 5) == 1.0
    assert cohen_kappa(["A", "B"], ["B", "A"]) == pytest.approx(-1.0)


def test_fleiss_small_hand_computed():
    # Subjects rated by 3 raters: [A, A, A] and [A, B, B].
    # P_1 = 1, P_2 = 2/6 -> P = 2/3; p_A = 4/6, p_B = 2/6 -> P_e = 5/9; kappa = (2/3 - 5/9) / (4/9) = 0.25
    table, cats = fleiss_table([["A", "A"], ["A", "B"], ["A", "B"]])
    assert cats == ["A", "B"] and table == [[3, 0], [1, 2]]
    assert fleiss_kappa(table) == pytest.approx(0.25)


def test_fleiss_textbook_example():
    # Fleiss (1971)-style worked example: 10 subjects, 14 raters, 5 categories; P = 0.378, P_e = 0.2128.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_two_raters_close_to_scott_pi_and_invalid_category():
    table, cats = fleiss_table([["A", None, "B"], ["A", None, "A"], ["A", "B", "B"]])
    assert INVALID in cats
    assert -1.0 <= fleiss_kappa(table) <= 1.0
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 0], [1, 0]])


def test_pairwise_agreement():
    out = pairwise_agreement({"x": ["A", "B", None], "y": ["A", "C", None], "z": ["A", "B", "C"]})
    assert set(out) == {"x__y", "x__z", "y__z"}
    assert out["x__y"]["agreement"] == pytest.approx(1 / 3)  # None == None is not agreement
    assert out["x__z"]["agreement"] == pytest.approx(2 / 3)
