"""The paired test that decides whether a new edge model replaces the shipped one."""

import numpy as np
import pytest

from edgefer.bench.significance import mcnemar


def test_only_the_faces_where_the_models_disagree_count():
    # 10 faces only B gets right, none only A: p = 2 * 0.5**10 under "equally good"
    a = np.array([True] * 50 + [False] * 10 + [False] * 40)
    b = np.array([True] * 50 + [True] * 10 + [False] * 40)
    r = mcnemar(a, b)
    assert (r["only_a_right"], r["only_b_right"], r["n"]) == (0, 10, 100)
    assert r["accuracy_a"] == pytest.approx(0.5) and r["accuracy_b"] == pytest.approx(0.6)
    assert r["p_value"] == pytest.approx(2 * 0.5**10)
    assert mcnemar(b, a)["p_value"] == pytest.approx(r["p_value"])  # two-sided: the order does not matter
    # as many the other way: no evidence, however many faces agree
    even = mcnemar(np.array([True] * 5 + [False] * 5 + [True] * 90), np.array([False] * 5 + [True] * 5 + [True] * 90))
    assert even["p_value"] == pytest.approx(1.0)


def test_identical_answers_and_mismatched_faces():
    same = np.array([True, False, True])
    assert mcnemar(same, same)["p_value"] == 1.0
    with pytest.raises(ValueError, match="different faces"):
        mcnemar(same, same[:2])
