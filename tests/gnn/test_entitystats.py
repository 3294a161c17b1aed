"""Entity statistics on a tiny hand-built case: values and point-in-time rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gnn.entitystats import ENTITY_FEATURES, entity_stats
from gnn.graphdata import GraphConfig, txn_arrays
from gnn.pit import PitConfig, graph_risk_features

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2026-03-01", tz="UTC")
DELAY = 2.0  # days


def world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """User u0 buys 10.0 (500.0 on day 4) at terminal m1 every day 0..9 at noon; u1 buys 30.0 at m1 on day 1 and
    100.0 at m2 on day 9. m1's transactions of days 3..5 are fraud; every label arrives DELAY
    days after its transaction, except day 8's (fraud, known 1 hour later)."""
    rows = [(T0 + d * DAY + pd.Timedelta(hours=12), "u0", "m1", 500.0 if d == 4 else 10.0,
             int(3 <= d <= 5 or d == 8)) for d in range(10)]  # fmt: skip
    rows += [(T0 + DAY + pd.Timedelta(hours=13), "u1", "m1", 30.0, 0)]
    rows += [(T0 + 9 * DAY + pd.Timedelta(hours=13), "u1", "m2", 100.0, 0)]
    df = pd.DataFrame(rows, columns=["ts", "user_id", "merchant_id", "amount", "fraud"])
    df = df.sort_values("ts", kind="mergesort").reset_index(drop=True)
    df["txn_id"] = [f"t{i:02d}" for i in range(len(df))]
    df["card_id"] = "c-" + df["user_id"]
    df["device_id"] = None
    df["ip"] = None
    early = (df["ts"] - T0).dt.days == 8
    lag = pd.to_timedelta(np.where(early, 3_600.0, DELAY * 86_400.0), unit="s")
    labels = pd.DataFrame(
        {"txn_id": df["txn_id"], "label": df["fraud"].astype(np.int8), "label_ts": df["ts"] + lag}
    )
    return df.drop(columns=["fraud"]), labels


def stats_at(day: float, labels: pd.DataFrame | None = None) -> tuple[list[float], float, float]:
    txns, lab = world()
    a = txn_arrays(txns, lab if labels is None else labels)
    at = int((T0 + day * DAY).value // 1000)
    s = entity_stats(a, at, label_delay_days=DELAY)
    m1 = int(a.offsets[4] + list(a.node_ids[4]).index("m1"))
    u0 = int(list(a.node_ids[0]).index("u0"))
    u1 = int(list(a.node_ids[0]).index("u1"))
    return s.fraud_rate[m1].tolist(), float(s.median_amount[u0]), float(s.median_amount[u1])


def test_merchant_rate_counts_only_settled_outcomes() -> None:
    # at day 8 00:00: labels of days <= 5 have arrived (day 5 noon + 2 d = day 7 noon); days 6, 7
    # are not settled. 7-day window from day 8 - 2 - 7 = day -1: m1's txns of days 0..5 plus
    # u1's day-1 one: 7 settled, 3 frauds.
    rates, median_u0, median_u1 = stats_at(8.0)
    assert rates[1:] == [3 / 7, 3 / 7]
    assert rates[0] == 1.0  # 1-day window from day 5: day 5's fraud settled, days 6, 7 not yet
    assert median_u0 == 10.0 and median_u1 == 30.0  # day 4's 500.0 does not move a median
    # at day 9 13:30: day 8's early label (fraud) counts, day 7 (+2 d = day 9 noon) has settled
    # as genuine; the 7-day window starts on day 0 13:30 (day 0's txn is out)
    rates, _, _ = stats_at(9 + 13.5 / 24)
    assert rates[0] == 1 / 2  # from day 6 13:30: day 7 (settled genuine) and day 8 (fraud)
    assert rates[1] == 4 / 9  # u0's days 1..8 and u1's day-1 txn; frauds 3, 4, 5, 8
    assert rates[2] == 4 / 10  # the 28-day window still holds day 0


def test_nothing_after_the_snapshot_counts() -> None:
    txns, labels = world()
    # a fraud label on day 6's transaction that arrives at day 8 00:00 exactly: not before `at`
    late = labels.copy()
    day6 = (txns["ts"] - T0).dt.days == 6
    late.loc[day6, "label"] = np.int8(1)
    late.loc[day6, "label_ts"] = T0 + 8 * DAY
    assert stats_at(8.0, late) == stats_at(8.0)
    _, _, median_u1 = stats_at(9.5)  # u1's day-9 100.0 is after the snapshot
    assert median_u1 == 30.0


def test_pit_features_use_the_row_amount_and_the_days_snapshot() -> None:
    txns, labels = world()
    cfg = PitConfig(use_gcn=False, graph=GraphConfig(label_delay_days=DELAY, min_ring=2))
    f = graph_risk_features(txn_arrays(txns, labels), cfg=cfg, progress=False).features
    last = f.iloc[-1]  # u1 at m2 on day 9: no m2 history, u1's median is 30.0 (day 1)
    assert math.isnan(last["merchant_fraud_rate_7d"])
    assert last["user_median_amount_30d"] == 30.0
    assert last["amount_to_user_median"] == 100.0 / 30.0
    assert math.isnan(f.loc[0, "user_median_amount_30d"])  # u0's first txn: no history
    assert list(f.columns[-len(ENTITY_FEATURES) :]) == list(ENTITY_FEATURES)


def spell_at(day: float, txns: pd.DataFrame, labels: pd.DataFrame) -> list[float]:
    a = txn_arrays(txns, labels)
    s = entity_stats(a, int((T0 + day * DAY).value // 1000), label_delay_days=DELAY)
    m1 = int(a.offsets[4] + list(a.node_ids[4]).index("m1"))
    return [float(v) for v in s.spell[m1]]


def test_fraud_spell_ages_and_common_point_of_purchase() -> None:
    txns, labels = world()
    # at day 8 00:00 the frauds of days 3..5 are known (day 8's is not): the spell runs from day
    # 3 to day 5 noon; u0's card has frauds at m1 only, so m1 explains all three (CPP), over 7
    # settled transactions in the 28-day window
    first, last, cpp, rate = spell_at(8.0, txns, labels)
    assert (first, last) == (
        (T0 + 3.5 * DAY).value // 1000,
        (T0 + 5.5 * DAY).value // 1000,
    )
    assert (cpp, rate) == (3.0, 3 / 7)
    assert math.isnan(spell_at(5.0, txns, labels)[0])  # no fraud label has arrived yet

    def with_card_fraud_at_m2(when: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
        row = [[when, "u0", "m2", 10.0, "t99", "c-u0", None, None]]
        more = pd.concat([txns, pd.DataFrame(row, columns=txns.columns)])
        lab = pd.DataFrame({"txn_id": ["t99"], "label": [np.int8(1)], "label_ts": [when + DAY]})
        return (
            more.sort_values("ts", kind="mergesort").reset_index(drop=True),
            pd.concat([labels, lab], ignore_index=True),
        )

    # the same card defrauded at m2 on day 2: a stolen card's spell explains m1's frauds too
    txns2, labels2 = with_card_fraud_at_m2(T0 + 2 * DAY + pd.Timedelta(hours=14))
    assert spell_at(8.0, txns2, labels2)[2:] == [0.0, 0.0]
    # ... but not a fraud on the card 20 days before m1's (another spell): m1 still explains them
    txns3, labels3 = with_card_fraud_at_m2(T0 - 20 * DAY)
    assert spell_at(8.0, txns3, labels3)[2:] == [3.0, 3 / 7]


def test_pit_rows_get_spell_ages_and_user_month() -> None:
    txns, labels = world()
    cfg = PitConfig(use_gcn=False, graph=GraphConfig(label_delay_days=DELAY, min_ring=2))
    f = graph_risk_features(txn_arrays(txns, labels), cfg=cfg, progress=False).features
    day9 = f.index[(txns["ts"] - T0).dt.days == 9]
    u0_day9, u1_day9 = int(day9[0]), int(day9[1])
    # u0 at m1 on day 9 noon, stats of 06:00 (6 h refresh): frauds of days 3..5 known (day 8's
    # label arrived at day 8 13:00 too): first day 3 noon -> 6 days, last day 8 noon -> 1 day
    assert f.loc[u0_day9, "merchant_fraud_first_age_days"] == 6.0
    assert f.loc[u0_day9, "merchant_fraud_last_age_days"] == 1.0
    assert f.loc[u0_day9, "merchant_cpp_frauds_28d"] == 4.0
    assert f.loc[u0_day9, "user_n_30d"] == 9.0  # days 0..8
    assert f.loc[u0_day9, "user_mean_amount_30d"] == (8 * 10.0 + 500.0) / 9
    assert f.loc[u1_day9, "user_n_30d"] == 1.0 and f.loc[u1_day9, "user_mean_amount_30d"] == 30.0
    assert math.isnan(f.loc[u1_day9, "merchant_fraud_first_age_days"])  # m2: no fraud known
    assert math.isnan(f.loc[0, "user_mean_amount_30d"])  # u0's first transaction
    # u0's 500.0 on day 4 was 50x its median then: a spike for the next 7 / 14 days, not before
    day4 = int(f.index[((txns["ts"] - T0).dt.days == 4) & (txns["user_id"] == "u0")][0])
    assert f.loc[day4, "user_spikes_7d"] == 0.0
    assert f.loc[day4 + 1, "user_spikes_7d"] == 1.0
    assert f.loc[u0_day9, ["user_spikes_7d", "user_spikes_14d"]].tolist() == [1.0, 1.0]
    assert f.loc[u1_day9, "user_spikes_14d"] == 0.0
