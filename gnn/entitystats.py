"""Point-in-time entity statistics: the merchant's known fraud and the user's usual amount.

``ENTITY_FEATURES`` (served as ``gnn.features.STATS_FEATURES``) are computed, like the graph
risk, from what a snapshot at ``at`` knows: transactions with ``ts < at`` and labels with
``label_ts < at``. Online, the workers run `current_stats` on the graph's ledger every few
minutes and cache one entry per merchant and user in Redis, and the decision reads both in its
one Lua call, exactly as training reads a moment's `entity_stats` (`fill_stats_rows`), the ages
and the amount ratio then taken from the transaction itself. The user's 30-day count and mean and
its spikes are exact per transaction on both sides (the velocity script keeps calendar-day
buckets and a sorted set of spikes, judged against the cached median).

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

- ``merchant_fraud_first_age_days`` / ``merchant_fraud_last_age_days``: days from the row back to
  the earliest / latest transaction among the merchant's known frauds of the last
  ``delay + AGE_WINDOW_DAYS``. A breached terminal stays breached for a spell and is then fixed;
  the rates above stay high for a label delay after the fix, and the age of the spell is what
  tells the two apart.
- ``merchant_cpp_frauds_28d`` / ``merchant_cpp_rate_28d``: common point of purchase. Known frauds
  at the merchant (in the 28-day settled window) whose card has no known fraud at another
  merchant within ``CARD_SPELL_DAYS`` of it: the merchant explains them, not a stolen card that
  was used everywhere in the same days. A card thief's one purchase at a shop raises the plain
  rate of that shop; it does not raise this one once the card's other frauds are known. Count,
  and rate over the window's settled transactions.
- ``user_n_30d`` / ``user_mean_amount_30d``: the user's transactions and mean amount over the
  calendar days ``d-29 .. d`` before the row (continuous, like the velocity windows).
- ``user_spikes_{7,14}d``: the user's earlier transactions in the last 7 / 14 days whose amount
  was over ``SPIKE_RATIO`` times the user's median as known then. A compromised card is used
  again and again at inflated amounts; one big purchase is not a pattern, and the count lifts
  the whole card, not one row.

They are cheap (a few bincounts and one group-by per call), so `gnn.pit` refreshes them every
``PitConfig.stats_period_days`` (6 h by default), more often than the graph snapshots; online
the workers refresh them more often still (``FRAUDRING_STATS_REFRESH_S``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from gnn.features import DAY_US, STATS_FEATURES, window_stats
from gnn.graphdata import KINDS, TxnArrays, txn_arrays

RATE_WINDOWS_DAYS: Final = (1, 7, 28)
MEAN_WINDOW_DAYS: Final = 30
AGE_WINDOW_DAYS: Final = 35
CPP_WINDOW_DAYS: Final = 28
CPP_LOOKBACK_DAYS: Final = 60
CARD_SPELL_DAYS: Final = 14
SPIKE_RATIO: Final = 3.0
SPIKE_WINDOWS_DAYS: Final = (7, 14)
MERCHANT_FEATURES: Final[tuple[str, ...]] = (
    *(f"merchant_fraud_rate_{w}d" for w in RATE_WINDOWS_DAYS),
    "merchant_fraud_first_age_days",
    "merchant_fraud_last_age_days",
    f"merchant_cpp_frauds_{CPP_WINDOW_DAYS}d",
    f"merchant_cpp_rate_{CPP_WINDOW_DAYS}d",
)
USER_FEATURES: Final[tuple[str, ...]] = (
    f"user_median_amount_{MEAN_WINDOW_DAYS}d",
    "amount_to_user_median",
    f"user_n_{MEAN_WINDOW_DAYS}d",
    f"user_mean_amount_{MEAN_WINDOW_DAYS}d",
    *(f"user_spikes_{w}d" for w in SPIKE_WINDOWS_DAYS),
)
ENTITY_FEATURES: Final[tuple[str, ...]] = MERCHANT_FEATURES + USER_FEATURES
assert ENTITY_FEATURES == STATS_FEATURES  # all served
USER: Final = 0
CARD: Final = 1
MERCHANT: Final = 4
assert KINDS[USER] == "user" and KINDS[CARD] == "card" and KINDS[MERCHANT] == "merchant"

F64 = npt.NDArray[np.float64]


@dataclass
class EntityStats:
    """Per global node id (all kinds; only users and merchants are filled)."""

    at: int
    fraud_rate: F64  # [n_nodes, len(RATE_WINDOWS_DAYS)]
    median_amount: F64  # [n_nodes] (NaN everywhere when not asked for)
    #: [n_nodes, 4]: first and last known fraud's ts (us, NaN if none), CPP count and rate
    spell: F64


def _known_frauds(a: TxnArrays, at: int, since: int) -> npt.NDArray[np.int64]:
    """Rows with ``since <= ts < at`` whose fraud label arrived before ``at``."""
    lo = int(np.searchsorted(a.t, since, side="left"))
    hi = int(np.searchsorted(a.t, at, side="left"))
    known = (a.label_ts[lo:hi] < at) & (a.label[lo:hi] == 1)
    return np.flatnonzero(known) + lo


def _in_span(
    group: npt.NDArray[np.int64], secs: npt.NDArray[np.int64], span: int
) -> npt.NDArray[np.int64]:
    """Per row: rows of the same group within ``span`` seconds of it (itself included)."""
    key = np.sort((group << 32) | secs)
    hi = np.searchsorted(key, (group << 32) | (secs + span), side="right")
    lo = np.searchsorted(key, (group << 32) | np.maximum(secs - span, 0), side="left")
    return np.asarray(hi - lo, dtype=np.int64)


def _card_spell_elsewhere(
    card: npt.NDArray[np.int64], merchant: npt.NDArray[np.int64], t: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Per fraud: does its card have another fraud at another merchant within CARD_SPELL_DAYS?
    A stolen card is used in a burst; a card that was defrauded months ago and is now hit at
    one terminal is a victim of that terminal, not evidence against it."""
    if len(t) == 0:
        return np.zeros(0, dtype=bool)
    secs = (t - t.min()) // 1_000_000
    span = CARD_SPELL_DAYS * 86_400
    _, pair = np.unique(card * (int(merchant.max()) + 1) + merchant, return_inverse=True)
    same_card = _in_span(card, secs, span)
    same_pair = _in_span(pair.astype(np.int64), secs, span)
    out: npt.NDArray[np.bool_] = same_card > same_pair
    return out


def _spell(a: TxnArrays, at: int, delay: int, settled_28d: F64) -> F64:
    """First/last known fraud ts per merchant, and its common-point-of-purchase frauds."""
    n_nodes = a.n_nodes
    out = np.full((n_nodes, 4), np.nan)
    rows = _known_frauds(a, at, at - delay - AGE_WINDOW_DAYS * DAY_US)
    m = a.node[rows, MERCHANT]
    ok = m >= 0
    first = np.full(n_nodes, np.inf)
    last = np.full(n_nodes, -np.inf)
    np.minimum.at(first, m[ok], a.t[rows][ok].astype(np.float64))
    np.maximum.at(last, m[ok], a.t[rows][ok].astype(np.float64))
    out[:, 0] = np.where(np.isfinite(first), first, np.nan)
    out[:, 1] = np.where(np.isfinite(last), last, np.nan)
    rows = _known_frauds(a, at, at - delay - CPP_LOOKBACK_DAYS * DAY_US)
    rows = rows[(a.node[rows, MERCHANT] >= 0) & (a.node[rows, CARD] >= 0)]
    m, card = a.node[rows, MERCHANT], a.node[rows, CARD]
    own = ~_card_spell_elsewhere(card, m, a.t[rows])
    own &= a.t[rows] >= at - delay - CPP_WINDOW_DAYS * DAY_US
    cpp = np.bincount(m[own], minlength=n_nodes).astype(np.float64)
    out[:, 2] = cpp
    out[:, 3] = np.where(settled_28d > 0, cpp / np.maximum(settled_28d, 1.0), np.nan)
    return out


def entity_stats(
    a: TxnArrays, at: int, *, label_delay_days: float, with_median: bool = True
) -> EntityStats:
    """The statistics as known strictly before ``at`` (see the module docstring); `gnn.pit`
    takes the users' medians from `user_rows` instead (``with_median=False``)."""
    n_nodes = a.n_nodes
    delay = int(label_delay_days * DAY_US)
    hi = int(np.searchsorted(a.t, at, side="left"))
    rates = np.full((n_nodes, len(RATE_WINDOWS_DAYS)), np.nan)
    settled_28d = np.zeros(n_nodes)
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
        if w == CPP_WINDOW_DAYS:
            settled_28d = n.astype(np.float64)
    median = user_median(a, at) if with_median else np.full(n_nodes, np.nan)
    return EntityStats(at, rates, median, _spell(a, at, delay, settled_28d))


def user_median(a: TxnArrays, at: int) -> F64:
    """Per node: the user's median amount over ``[at - 30 d, at)``, NaN without history."""
    lo = int(np.searchsorted(a.t, at - MEAN_WINDOW_DAYS * DAY_US, side="left"))
    hi = int(np.searchsorted(a.t, at, side="left"))
    user = a.node[lo:hi, USER]
    ok = user >= 0
    median = np.full(a.n_nodes, np.nan)
    if ok.any():
        by_user = pd.Series(a.amount[lo:hi][ok]).groupby(user[ok]).median()
        median[by_user.index.to_numpy(dtype=np.int64)] = by_user.to_numpy(dtype=np.float64)
    return median


def user_rows(a: TxnArrays, *, period_days: float) -> F64:
    """USER_FEATURES of every row, in that order: the median (refreshed every ``period_days``
    from the world's first row, so the first rows of a range have history and the spikes see
    them), the amount's ratio to it, the 30-day count and mean, and the spikes."""
    step = max(1, int(period_days * DAY_US))
    out = np.full((len(a.t), len(USER_FEATURES)), np.nan)
    user = a.node[:, USER]
    lo = 0
    while lo < len(a.t):
        at = int(a.t[lo]) // step * step
        hi = int(np.searchsorted(a.t, at + step, side="left"))
        median = user_median(a, at)
        u = user[lo:hi]
        out[lo:hi, 0] = np.where(u >= 0, median[np.maximum(u, 0)], np.nan)
        lo = hi
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, 1] = np.where(out[:, 0] > 0, a.amount / out[:, 0], np.nan)
        count, total = window_stats(user, a.t // DAY_US, MEAN_WINDOW_DAYS, a.amount)
        out[:, 2], out[:, 3] = count, np.where(count > 0, total / count, np.nan)
    spike = (out[:, 1] > SPIKE_RATIO).astype(np.float64)
    hour = a.t // (3600 * 1_000_000)
    for j, w in enumerate(SPIKE_WINDOWS_DAYS):
        out[:, 4 + j] = window_stats(user, hour, 24 * w, spike)[1]
    return out


def fill_stats_rows(out: F64, rows: slice, a: TxnArrays, stats: EntityStats, users: F64) -> None:
    """Write ENTITY_FEATURES of ``rows`` (columns in that order): the merchant's from one
    moment's stats, the user's from `user_rows` (computed once per world)."""
    merchant = a.node[rows, MERCHANT]
    k = len(RATE_WINDOWS_DAYS)
    has_m = merchant >= 0
    safe_m = np.maximum(merchant, 0)
    out[rows, :k] = np.where(has_m[:, None], stats.fraud_rate[safe_m], np.nan)
    spell = np.where(has_m[:, None], stats.spell[safe_m], np.nan)
    t = a.t[rows].astype(np.float64)
    out[rows, k] = (t - spell[:, 0]) / DAY_US
    out[rows, k + 1] = (t - spell[:, 1]) / DAY_US
    out[rows, k + 2 : k + 4] = spell[:, 2:]
    out[rows, len(MERCHANT_FEATURES) :] = users[rows]


@dataclass
class CurrentStats:
    """One moment's statistics by entity id, as the workers cache them for the decisions."""

    at: float  # epoch s
    #: merchant id -> 1/7/28-day rates, first and last known fraud ts (epoch s), CPP count, rate
    merchants: dict[str, tuple[float, ...]]
    users: dict[str, float]  # user id -> median amount over the last 30 days


def current_stats(ledger: pd.DataFrame, *, at: float, label_delay_days: float) -> CurrentStats:
    """`entity_stats` at ``at`` from the graph's ledger (columns of
    `graph.repository.LEDGER_SCHEMA`, ts and labelled_at in epoch s), keyed by entity id.
    Every merchant and user of the ledger gets an entry, so a merchant with no known fraud reads
    0, not unknown."""
    led = ledger.sort_values(["ts", "txn_id"], kind="mergesort").reset_index(drop=True)
    txns = pd.DataFrame(
        {
            "txn_id": led["txn_id"],
            "ts": pd.to_datetime((led["ts"] * 1e6).round().astype("int64"), unit="us", utc=True),
            "user_id": led["user_id"],
            "card_id": led["card_id"],
            "device_id": None,
            "ip": None,
            "merchant_id": led["merchant_id"],
            "amount": led["amount"],
        }
    )
    known = led["label"].isin(["fraud", "legitimate"]) & led["labelled_at"].notna()
    labels = pd.DataFrame(
        {
            "txn_id": led["txn_id"][known],
            "label": (led["label"][known] == "fraud").astype(np.float64),
            "label_ts": pd.to_datetime(
                (led["labelled_at"][known] * 1e6).round().astype("int64"), unit="us", utc=True
            ),
        }
    )
    a = txn_arrays(txns, labels)
    at_us = round(at * 1e6)
    stats = entity_stats(a, at_us, label_delay_days=label_delay_days)
    m0, m1 = int(a.offsets[MERCHANT]), int(a.offsets[MERCHANT + 1])
    spell = stats.spell[m0:m1].copy()
    spell[:, :2] /= 1e6  # ts in epoch s
    values = np.concatenate([stats.fraud_rate[m0:m1], spell], axis=1)
    merchants = {
        str(i): tuple(float(v) for v in row)
        for i, row in zip(a.node_ids[MERCHANT], values, strict=True)
    }
    u0, u1 = int(a.offsets[USER]), int(a.offsets[USER + 1])
    users = {
        str(i): float(v) for i, v in zip(a.node_ids[USER], stats.median_amount[u0:u1], strict=True)
    }
    return CurrentStats(at, merchants, users)
