"""Served statistics (STATS_FEATURES) equal the trainer's: ledger in the graph -> workers' refresh
-> Redis -> the decision's Lua call, against `gnn.entitystats` on the same transactions.

A small hand-made month at three merchants: a breached terminal (a run of frauds by cards
defrauded nowhere else), a shop hit once by a card that was used at another shop the same week,
and a clean shop; labels arrive a few days late, and some arrive only after the refresh moment,
so they must not count.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pandas as pd
import pytest
from redis.asyncio import Redis

from gnn.entitystats import EntityStats as EntityStatsOffline
from gnn.entitystats import entity_stats
from gnn.graphdata import TxnArrays, txn_arrays
from graph.repository import CypherStore
from graph.schemas import TxnRecord
from realtime.features import STATS_FEATURES, stats_features
from realtime.keys import MERCHANT_STATS_SIZE, EntityStats, Keys
from realtime.velocity import VelocityStore
from tests.support.realtime import key_txn
from workers.stats import refresh_stats

DAY = 86_400.0
T0 = 1_767_225_600.0  # 2026-01-01 UTC
DELAY = 7.0


def month() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(400):
        ts = T0 + float(rng.uniform(0, 40 * DAY))
        rows.append(
            (
                f"t{i:04d}",
                ts,
                f"u{rng.integers(12)}",
                f"c{rng.integers(12)}",
                f"m{rng.integers(3)}",
                float(np.round(rng.gamma(2.0, 20.0), 2)),
            )
        )
    txns = pd.DataFrame(
        rows, columns=["txn_id", "ts", "user_id", "card_id", "merchant_id", "amount"]
    )
    txns = txns.sort_values(["ts", "txn_id"], kind="mergesort").reset_index(drop=True)
    late = txns["ts"] > T0 + 20 * DAY
    terminal = (txns["merchant_id"] == "m0") & late  # breached from day 20 on
    stolen = (txns["card_id"] == "c5") & late & (txns["ts"] < T0 + 24 * DAY)  # a stolen card
    fraud = terminal | stolen
    lab = txns[fraud | (rng.random(len(txns)) < 0.3)]
    arrive = lab["ts"] + DELAY * DAY * rng.uniform(0.5, 1.2, size=len(lab))
    labels = pd.DataFrame(
        {"txn_id": lab["txn_id"], "label": fraud[lab.index].astype(float), "label_ts": arrive}
    )
    return txns, labels


def _offline(
    txns: pd.DataFrame, labels: pd.DataFrame, at: float
) -> tuple[TxnArrays, EntityStatsOffline]:
    frame = txns.assign(ts=pd.to_datetime(txns["ts"], unit="s", utc=True), device_id=None, ip=None)
    lab = labels.assign(label_ts=pd.to_datetime(labels["label_ts"], unit="s", utc=True))
    a = txn_arrays(frame, lab)
    return a, entity_stats(a, round(at * 1e6), label_delay_days=DELAY)


def test_served_statistics_equal_the_trainers(
    store: CypherStore, redis_url: str, redis_prefix: str
) -> None:
    import redis

    txns, labels = month()
    cut = T0 + 33 * DAY  # the stream stops here; labels later than the refresh must not count
    seen = txns[txns["ts"] < cut]
    store.ingest(
        [
            TxnRecord(r.txn_id, r.ts, r.user_id, r.card_id, None, None, r.merchant_id, r.amount)
            for r in seen.itertuples()
        ]
    )
    for r in labels[labels["txn_id"].isin(seen["txn_id"])].itertuples():
        store.label(
            kind="txn",
            id=r.txn_id,
            label="fraud" if r.label else "legitimate",
            by="test",
            at=r.label_ts,
        )
    client = redis.Redis.from_url(redis_url)
    keys = Keys(redis_prefix)
    out = refresh_stats(client, keys, store, label_delay_days=DELAY)
    at = float(out["at"])
    assert at == pytest.approx(seen["ts"].max(), abs=1e-3)
    assert out["merchants"] == 3 and out["users"] == seen["user_id"].nunique()

    a, st = _offline(seen, labels, at)
    assert labels["label_ts"].max() > at  # some labels arrived after the moment
    m0 = int(a.offsets[4])
    for j, mid in enumerate(a.node_ids[4]):
        raw = client.get(keys.stats("merchant", str(mid)))
        assert raw is not None
        entry = EntityStats.loads(raw, size=MERCHANT_STATS_SIZE)
        assert entry is not None
        want = np.concatenate([st.fraud_rate[m0 + j], st.spell[m0 + j]])
        want[3:5] /= 1e6
        np.testing.assert_allclose(entry.values, want, rtol=1e-9, atol=1e-6, equal_nan=True)
    breached = EntityStats.loads(client.get(keys.stats("merchant", "m0")) or b"", size=7)
    assert breached is not None and breached.values[5] >= 3  # its own frauds, CPP
    assert breached.values[1] > 0.2

    # A decision after the moment reads both entries in its Lua call; the served row equals
    # the trainer's (`fill_stats_rows`: the moment's stats, ages from the row's own ts).
    async def decide() -> list[float]:
        vs = VelocityStore(Redis.from_url(redis_url), keys)
        ts = at + 3600.0
        state = await vs.decide(key_txn("new-1", ts, 80.0, "u1", "c1", None, None, "m0"))
        await vs.client.aclose()
        assert state.stats[0] is not None and state.stats[1] is not None
        return stats_features(
            amount=80.0,
            ts=ts,
            merchant=state.stats[0],
            user=state.stats[1],
            window=state.user_window,
        )

    got = asyncio.run(decide())
    u = int(a.offsets[0]) + list(a.node_ids[0]).index("u1")
    m = m0 + list(a.node_ids[4]).index("m0")
    ts_us = (at + 3600.0) * 1e6
    row = [
        *st.fraud_rate[m],
        (ts_us - st.spell[m, 0]) / (DAY * 1e6),
        (ts_us - st.spell[m, 1]) / (DAY * 1e6),
        *st.spell[m, 2:],
        st.median_amount[u],
        80.0 / st.median_amount[u],
    ]
    # the user's windows come from the velocity script (tests/realtime/test_parity.py); this
    # month went into the graph directly, so the script has seen only this one transaction
    assert len(got) == len(STATS_FEATURES) == len(row) + 4
    np.testing.assert_allclose(got[: len(row)], row, rtol=1e-6, equal_nan=True)
    assert not math.isnan(got[len(row) - 1]) and got[len(row)] == 0.0
    client.close()
