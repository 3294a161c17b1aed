"""The neighbours' first-stage scores on tiny hand-built worlds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from gnn.graphdata import txn_arrays
from gnn.neighbours import NB_FEATURES, first_stage, neighbour_scores

DEVICE = NB_FEATURES.index("nb_device")
CARD = NB_FEATURES.index("nb_card")


def _world(rows: Sequence[tuple[float, str, str | None, str | None]]) -> pd.DataFrame:
    """(day, user, device, card) per transaction, in time order."""
    return pd.DataFrame(
        {
            "txn_id": [f"t{i}" for i in range(len(rows))],
            "ts": pd.to_datetime([d for d, *_ in rows], unit="D", utc=True),
            "amount": 10.0,
            "user_id": [u for _, u, _, _ in rows],
            "device_id": [dev for _, _, dev, _ in rows],
            "card_id": [c for *_, c in rows],
            "ip": None,
            "merchant_id": "m",
        }
    )


def test_another_users_score_reaches_the_next_transaction_on_the_device() -> None:
    txns = _world([(0.1, "a", "d", None), (0.5, "a", "d", None), (1.2, "b", "d", "c")])
    a = txn_arrays(txns, None)
    nb = neighbour_scores(a, np.array([0.9, 0.2, 0.4]))
    assert np.isnan(nb[0, DEVICE])  # nobody before
    assert np.isnan(nb[1, DEVICE])  # its own earlier score is not a neighbour's
    assert nb[2, DEVICE] == pytest.approx(0.9)  # the highest of a's day
    assert np.isnan(nb[2, CARD])  # the card has no other user
    assert np.isnan(nb[:, NB_FEATURES.index("nb_ip")]).all()  # no IP at all


def test_a_score_is_forgotten_after_the_window() -> None:
    txns = _world([(0.5, "a", "d", None), (7.5, "b", "d", None), (8.5, "c", "d", None)])
    nb = neighbour_scores(txn_arrays(txns, None), np.array([0.9, 0.1, 0.3]), window_days=7)
    assert nb[1, DEVICE] == pytest.approx(0.9)  # day 7 still sees day 0
    assert nb[2, DEVICE] == pytest.approx(0.1)  # day 8 no longer does


def test_a_hub_gives_nothing() -> None:
    rows = [(0.1 + i / 100, f"u{i}", "d", None) for i in range(4)]
    s = np.array([0.9, 0.8, 0.7, 0.6])
    capped = neighbour_scores(txn_arrays(_world(rows), None), s, hub_cap=3)
    assert capped[2, DEVICE] == pytest.approx(0.9)  # three users so far
    assert np.isnan(capped[3, DEVICE])  # the fourth makes it a hub
    open_ = neighbour_scores(txn_arrays(_world(rows), None), s, hub_cap=50)
    assert open_[3, DEVICE] == pytest.approx(0.9)


def test_unscored_transactions_are_not_kept() -> None:
    txns = _world([(0.1, "a", "d", None), (0.2, "b", "d", None)])
    nb = neighbour_scores(txn_arrays(txns, None), np.array([np.nan, 0.5]))
    assert np.isnan(nb[1, DEVICE])


def test_first_stage_scores_fit_rows_out_of_fold() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    user = rng.integers(0, 400, n).astype(np.int64)
    # each user's label is its own: in fold a model could learn the user, out of fold it cannot
    x = np.column_stack([user.astype(np.float64), rng.normal(size=n)])
    known = (user % 7 == 0).astype(np.int64)
    fit, val = np.arange(3000), np.arange(3000, n)
    s = first_stage(x, known, fit=fit, val=val, user=user, features=["u", "z"], seed=1)
    assert not np.isnan(s).any()
    again = first_stage(x, known, fit=fit, val=val, user=user, features=["u", "z"], seed=1)
    np.testing.assert_array_equal(s, again)
    from gnn.metrics import average_precision

    # the user id tells a user's label only in fold: out of fold it ranks no better than chance
    assert average_precision(known[fit], s[fit]) < 0.5
