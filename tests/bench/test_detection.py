"""The handbook folds' rows: the training window grows backwards, the test week stays the same."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pandas as pd

from bench.detection import _rows
from gnn.features import DAY_US

START = pd.Timestamp("2018-07-25", tz="UTC")
D0 = int(START.value // 1000) // DAY_US


def _dataset(rows: list[tuple[int, str, int]]) -> Any:
    """(day offset from the training week's start, user, fraud) per transaction, in time order."""
    t = np.array([(D0 + d) * DAY_US + 3_600_000_000 for d, _, _ in rows], dtype=np.int64)
    return SimpleNamespace(
        t=t,
        arrays=SimpleNamespace(label=np.array([f for _, _, f in rows], dtype=np.int64)),
        frames=SimpleNamespace(txns=pd.DataFrame({"user_id": [u for _, u, _ in rows]})),
    )


ROWS = [
    (-21, "early", 1),  # 28-day window only (its first day)
    (-5, "mid", 0),  # 14- and 28-day windows
    (0, "week", 1),  # the training week: u known compromised for the test week
    (6, "last", 0),
    (7, "delay", 1),  # delay week: never trained on; known from test day 1 on
    (14, "week", 0),  # test day 0: known compromised (fraud in the training week), dropped
    (14, "delay", 0),  # test day 0: not yet known
    (15, "delay", 1),  # test day 1: known (its fraud lies 7 days earlier), dropped
    (15, "early", 1),  # fraud in the 28-day window but not the training week: stays
    (21, "new", 0),  # after the test week
]


def test_training_window_grows_backwards_and_test_rows_do_not_move() -> None:
    ds = cast(Any, _dataset(ROWS))
    train7, test7 = _rows(ds, START, window=7)
    train14, test14 = _rows(ds, START, window=14)
    train28, test28 = _rows(ds, START, window=28)
    assert train7.tolist() == [2, 3]
    assert train14.tolist() == [1, 2, 3]
    assert train28.tolist() == [0, 1, 2, 3]
    assert test7.tolist() == test14.tolist() == test28.tolist() == [6, 8]
