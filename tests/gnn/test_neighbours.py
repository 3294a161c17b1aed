"""The neighbours' first-stage scores on tiny hand-built worlds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from gnn.graphdata import txn_arrays
from gnn.metrics import average_precision
from gnn.neighbours import NB_FEATURES, first_stage, neighbour_scores, user_groups

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
    s = first_stage(x, known, fit=fit, val=val, groups=user, features=["u", "z"], seed=1)
    assert not np.isnan(s).any()
    again = first_stage(x, known, fit=fit, val=val, groups=user, features=["u", "z"], seed=1)
    np.testing.assert_array_equal(s, again)
    # the user id tells a user's label only in fold: out of fold it ranks no better than chance
    assert average_precision(known[fit], s[fit]) < 0.5


def test_users_sharing_a_card_device_or_ip_fold_together_but_not_through_a_hub() -> None:
    rows = [(0.1, "a", "d1", None), (0.2, "b", "d1", "c1"), (0.3, "c", None, "c1")]
    rows += [(0.4, "e", "d2", None)]
    rows += [(0.5 + i / 100, f"h{i}", "hub", None) for i in range(3)]
    a = txn_arrays(_world(rows), None)
    g = user_groups(a, hub_cap=2)
    assert g[0] == g[1] == g[2]  # a-b by the device, b-c by the card
    assert g[3] != g[0]
    assert len({g[4], g[5], g[6]}) == 3  # three users of one device: a hub at cap 2
    assert len(set(user_groups(a, hub_cap=3)[4:])) == 1


def test_group_folds_keep_a_shared_devices_label_from_scoring_its_other_user() -> None:
    # 200 pairs of users, each pair on its own device; the device's feature (as device
    # velocity would) is the same for both, and both are fraud or neither is
    pairs = 200
    rows = [(r + i / 1000, f"u{i}", f"d{i // 2}", None) for r in range(3) for i in range(2 * pairs)]
    a = txn_arrays(_world(rows), None)
    device = a.node[:, 2] - a.offsets[2]
    x = np.column_stack([device.astype(np.float64), np.zeros(len(device))])
    known = (device % 5 == 0).astype(np.int64)
    fit, val = np.arange(len(x) - 300), np.arange(len(x) - 300, len(x))

    def oof(groups: np.ndarray) -> float:
        s = first_stage(x, known, fit=fit, val=val, groups=groups, features=["d", "z"], seed=3)
        return average_precision(known[fit], s[fit])

    by_user = oof(a.node[:, 0])
    by_group = oof(user_groups(a))
    assert by_user > 0.9  # the other user of the device gave the label away
    assert by_group < 0.5
