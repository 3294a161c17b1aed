"""`bench learning`'s choice of the served hedge, and what it serves on a small world."""

from __future__ import annotations

import pytest

from bench.learning import SERVED, choose_hedge, validate
from bench.learnworlds import build


def test_the_best_mean_wins_among_hedges_that_never_fall_below_the_floor() -> None:
    gains = {
        "none": [0.0, 0.0, 0.0],
        "dropout": [0.30, -0.01, 0.0],
        "blend": [0.50, -0.05, 0.10],  # best mean, but one world 0.05 below (b)
        "monotone": [0.05, 0.0, 0.0],
    }
    assert choose_hedge(gains, floor=-0.02) == "dropout"
    assert choose_hedge(gains, floor=-0.10) == "blend"
    assert choose_hedge(gains, floor=0.0) == "monotone"


def test_without_a_hedge_above_the_floor_the_best_worst_case_wins() -> None:
    gains = {"none": [-0.2, 0.4], "dropout": [-0.05, 0.0], "blend": [-0.1, 0.3]}
    assert choose_hedge(gains, floor=-0.02) == "dropout"


def test_a_world_without_fraud_in_its_test_week_counts_for_no_hedge() -> None:
    nan = float("nan")
    gains = {"none": [nan, 0.0, 0.0], "dropout": [nan, 0.1, 0.0], "blend": [nan, nan, nan]}
    assert choose_hedge(gains, floor=-0.02) == "dropout"
    assert choose_hedge({"none": [nan, -0.3], "dropout": [nan, -0.1]}) == "dropout"


@pytest.mark.slow
def test_what_is_served_is_either_the_hedged_model_or_the_tabular_one() -> None:
    ds = build("dense", 3, transactions=20_000, shift=False, graph_model=False)
    r = validate(ds, seed=3)
    for h in SERVED:
        assert r[f"g_{h}"] in (r["b"], r[f"h_{h}"])
    assert r["h_none"] == r["d"] and 0.0 <= r["b"] <= 1.0
