"""Point-in-time entity statistics that the online engine does not serve yet (evaluation only).

``EVAL_ONLY_FEATURES`` are computed, like the graph risk, from what a snapshot at ``at`` knows:
transactions with ``ts < at`` and labels with ``label_ts < at``. They have no counterpart in the
online feature vector (`realtime.features` assembles only TABULAR + GRAPH features, the latter from
the workers' cached GraphRisk), so the served model never uses them; benchmarks may, and label
the result as "evaluation-only features".

- ``merchant_fraud_rate_{w}d``: the merchant's known fraud rate over transactions in
  ``[at - delay - w, at)`` whose outcome is known at ``at``: a label arrived, or the transaction is
  older than the label delay (then, unlabelled, it counts as genuine, as in the snapshot's label
  risk). The window ends at ``at``, not at ``at - delay``, so labels that arrive early count too;
  it starts ``delay`` earlier than ``w`` days so that a ``w``-day window always holds ``w`` days of
  settled outcomes (the handbook's terminal risk: 7-day delay, then a 1/7/30-day window). The
  1-day window is the sharpest: a compromised terminal's last settled day is all fraud, where
  the longer windows dilute it with the days before the compromise.
  NaN when the window has no settled transaction.
- ``user_median_amount_30d``: the user's median amount over ``[at - 30 d, at)``, NaN if none
  (a median, because a compromised card's inflated frauds would drag a mean up).
- ``amount_to_user_median``: the row's own amount over that median (a compromised card spends
  several times its usual amount).

They are cheap (a few bincounts and one group-by per call), so `gnn.pit` refreshes them every
``PitConfig.stats_period_days`` (6 h by default), more often than the graph snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from gnn.features import DAY_US
from gnn.graphdata import TxnArrays

RATE_WINDOWS_DAYS: Final = (1, 7, 28)
MEAN_WINDOW_DAYS: Final = 30
EVAL_ONLY_FEATURES: Final[tuple[str, ...]] = (
    *(f"merchant_fraud_rate_{w}d" for w in RATE_WINDOWS_DAYS),
    f"user_median_amount_{MEAN_WINDOW_DAYS}d",
    "amount_to_user_median",
)
USER: Final = 0
MERCHANT: Final = 4

F64 = npt.NDArray[np.float64]


@dataclass
class EntityStats:
    """Per global node id (all kinds; only users and merchants are filled)."""

    at: int
    fraud_rate: F64  # [n_nodes, len(RATE_WINDOWS_DAYS)]
    median_amount: F64  # [n_nodes]


def entity_stats(a: TxnArrays, at: int, *, label_delay_days: float) -> EntityStats:
    """The statistics as known strictly before ``at`` (see the module docstring)."""
    n_nodes = a.n_nodes
    delay = int(label_delay_days * DAY_US)
    hi = int(np.searchsorted(a.t, at, side="left"))
    rates = np.full((n_nodes, len(RATE_WINDOWS_DAYS)), np.nan)
    for j, w in enumerate(RATE_WINDOWS_DAYS):
        lo = int(np.searchsorted(a.t, at - delay - w * DAY_US, side="left"))
        node = a.node[lo:hi, MERCHANT]
        known = a.label_ts[lo:hi] < at
        settled = known | (a.t[lo:hi] < at - delay)
        fraud = known & (a.label[lo:hi] == 1)
        ok = node >= 0
        n = np.bincount(node[ok], weights=settled[ok].astype(float), minlength=n_nodes)
        f = np.bincount(node[ok], weights=fraud[ok].astype(float), minlength=n_nodes)
        rates[:, j] = np.where(n > 0, f / np.maximum(n, 1.0), np.nan)
    lo = int(np.searchsorted(a.t, at - MEAN_WINDOW_DAYS * DAY_US, side="left"))
    user = a.node[lo:hi, USER]
    ok = user >= 0
    median = np.full(n_nodes, np.nan)
    if ok.any():
        by_user = pd.Series(a.amount[lo:hi][ok]).groupby(user[ok]).median()
        median[by_user.index.to_numpy(dtype=np.int64)] = by_user.to_numpy(dtype=np.float64)
    return EntityStats(at, rates, median)


def fill_eval_rows(out: F64, rows: slice, a: TxnArrays, stats: EntityStats) -> None:
    """Write EVAL_ONLY_FEATURES of ``rows`` (columns in that order) from one snapshot's stats."""
    merchant = a.node[rows, MERCHANT]
    user = a.node[rows, USER]
    k = len(RATE_WINDOWS_DAYS)
    has_m = merchant >= 0
    out[rows, :k] = np.where(has_m[:, None], stats.fraud_rate[np.maximum(merchant, 0)], np.nan)
    median = np.where(user >= 0, stats.median_amount[np.maximum(user, 0)], np.nan)
    out[rows, k] = median
    with np.errstate(divide="ignore", invalid="ignore"):
        out[rows, k + 1] = np.where(median > 0, a.amount[rows] / median, np.nan)
