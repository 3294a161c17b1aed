"""Metrics on hand-computed cases (and sklearn as a second opinion where it has the metric)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from gnn import metrics as m

Y = [1, 0, 1, 0, 0]
S = [0.9, 0.8, 0.7, 0.2, 0.1]


def test_hand_computed() -> None:
    # ranks: 1(.9) 0(.8) 1(.7) 0 0 -> positive pairs beating negatives: 3 + 2 of 6
    assert m.roc_auc(Y, S) == pytest.approx(5 / 6)
    # precision at each positive: 1/1, 2/3 -> mean 5/6
    assert m.average_precision(Y, S) == pytest.approx((1 + 2 / 3) / 2)
    assert m.recall_at_precision(Y, S, 0.9) == pytest.approx(0.5)
    assert m.recall_at_fpr(Y, S, 0.01) == pytest.approx(0.5)
    assert m.recall_at_fpr(Y, S, 0.34) == pytest.approx(1.0)
    # flag >= 0.75: one FP (0.8), one FN (0.7): (100 + 550) / 5 * 1000
    assert m.expected_cost_per_1000(Y, np.array(S) >= 0.75) == pytest.approx(130_000)


def test_ties_flip_together() -> None:
    assert m.average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert m.roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert math.isnan(m.average_precision([0, 0], [0.1, 0.2]))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5)), min_size=2, max_size=40))
def test_agrees_with_sklearn(pairs: list[tuple[int, int]]) -> None:
    y = [p[0] for p in pairs]
    s = [p[1] / 5 for p in pairs]
    if 0 < sum(y) < len(y):
        assert m.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
        assert m.average_precision(y, s) == pytest.approx(average_precision_score(y, s))


def test_card_precision_at_k() -> None:
    day = [0, 0, 0, 0, 1, 1, 1]
    card = ["a", "a", "b", "c", "a", "b", "c"]
    y = [0, 1, 0, 0, 1, 0, 1]
    s = [0.1, 0.9, 0.8, 0.2, 0.95, 0.5, 0.4]
    # day 0: a(0.9, fraud) b(0.8) -> 1/2; a detected. day 1: a excluded; b(0.5) c(0.4, fraud) -> 1/2
    assert m.card_precision_at_k(day=day, card=card, y=y, s=s, k=2) == pytest.approx(0.5)
    # k=1: day 0 a -> 1; day 1 (a out) b -> 0
    assert m.card_precision_at_k(day=day, card=card, y=y, s=s, k=1) == pytest.approx(0.5)


def test_ring_recall_within_24h() -> None:
    first = {"r1": 1000.0, "r2": 1000.0, "r3": 5000.0}
    members = {"r1": {"a", "b"}, "r2": {"c"}, "r3": {"d"}}
    user = ["a", "b", "c", "c", "d"]
    ts = [500.0, 1000.0 + 86_400 + 1, 1000.0 + 86_401, 900.0, 6000.0]
    flagged = [False, True, True, False, True]
    # r1: b flagged 1 s too late; r2: c flagged too late; r3: d flagged in time
    assert m.ring_recall_within(
        ring_first_fraud=first, ring_members=members, user=user, ts=ts, flagged=flagged
    ) == pytest.approx(1 / 3)
    flagged[0] = True  # a flagged before the first fraud counts
    assert m.ring_recall_within(
        ring_first_fraud=first, ring_members=members, user=user, ts=ts, flagged=flagged
    ) == pytest.approx(2 / 3)
