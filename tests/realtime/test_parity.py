"""Online velocity (Redis Lua) equals the trainer's offline point-in-time features (gnn.features).

Two kinds of world are replayed in (ts, txn_id) order through the decide script and compared
feature by feature with `gnn.features.tabular_features`: a small random one, dense enough to hit
every window edge (minutes, hours, 7 and 30 days, missing entities, shared devices / IPs /
cards), and simulated ones (`world.simulate`, 3 and 12 days).
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
from redis.asyncio import Redis

from gnn import features as offline
from realtime.features import TABULAR_FEATURES, VELOCITY_FEATURES, request_features
from realtime.keys import Keys
from realtime.velocity import VelocityStore
from tests.support.realtime import T0, key_txn


def small_world(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # bursts (seconds apart), same-minute pairs, and long gaps up to 45 days
    gaps = rng.choice(
        [0, 1, 30, 59, 61, 3599, 3600, 86_399, 7 * 86_400, 31 * 86_400],
        size=n,
        p=[0.05, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.04, 0.01],
    )
    micros = T0 * 1_000_000 + np.cumsum(gaps * 1_000_000 + rng.integers(0, 999_999, size=n))

    def ids(prefix: str, k: int, p_null: float) -> list[str | None]:
        return [None if rng.random() < p_null else f"{prefix}{rng.integers(k)}" for _ in range(n)]

    df = pd.DataFrame(
        {
            "txn_id": [f"x{i:05d}" for i in range(n)],
            "ts": pd.to_datetime(micros, unit="us", utc=True),
            "user_id": [f"u{v}" for v in rng.integers(0, 12, size=n)],
            "card_id": ids("c", 15, 0.1),
            "device_id": ids("d", 8, 0.2),
            "ip": [None if rng.random() < 0.2 else f"10.0.0.{rng.integers(6)}" for _ in range(n)],
            "merchant_id": ids("m", 5, 0.1),
            "amount": np.round(rng.uniform(1, 500, size=n), 2),
        }
    )
    return df.sort_values(["ts", "txn_id"], kind="stable").reset_index(drop=True)


def online(df: pd.DataFrame, url: str, prefix: str) -> pd.DataFrame:
    async def go() -> list[list[float]]:
        store = VelocityStore(Redis.from_url(url), Keys(prefix))
        rows = []
        for r in df.itertuples():
            ts = r.ts.value / 1e9
            card, device, ip, merchant = (
                v if isinstance(v, str) else None
                for v in (r.card_id, r.device_id, r.ip, r.merchant_id)
            )
            t = key_txn(r.txn_id, ts, r.amount, r.user_id, card, device, ip, merchant)
            state = await store.decide(t)
            assert state.velocity is not None
            rows.append(request_features(amount=r.amount, ts=ts) + state.velocity)
        await store.client.aclose()
        return rows

    return pd.DataFrame(asyncio.run(go()), columns=list(TABULAR_FEATURES))


def simulated_world(out: Path, *, days: int) -> pd.DataFrame:
    from world.simulate import generate

    generate(out=out, transactions=1500, seed=11, days=days, progress=False)
    txns = pd.read_parquet(out / "transactions.parquet")
    return txns.sort_values(["ts", "txn_id"], kind="mergesort").reset_index(drop=True)


def assert_features_agree(got: pd.DataFrame, expected: pd.DataFrame, df: pd.DataFrame) -> None:
    assert list(expected.columns) == list(TABULAR_FEATURES)
    for name in TABULAR_FEATURES:
        a, b = got[name].to_numpy(), expected[name].to_numpy()
        both_nan = np.isnan(a) & np.isnan(b)
        close = np.isclose(a, b, rtol=1e-6, atol=1e-6) | both_nan
        bad = np.flatnonzero(~close)
        assert not len(bad), (name, df.iloc[bad[:3]].to_dict("records"), a[bad[:3]], b[bad[:3]])


@pytest.mark.parametrize("seed", [1, 2])
def test_online_velocity_matches_offline_features(
    seed: int, redis_url: str, redis_prefix: str
) -> None:
    df = small_world(700, seed)
    got = online(df, redis_url, f"{redis_prefix}{seed}:")
    assert_features_agree(got, offline.tabular_features(df), df)
    assert set(VELOCITY_FEATURES) <= set(TABULAR_FEATURES)
    assert not math.isnan(got["user_n_7d"].iloc[-1])


@pytest.mark.parametrize("days", [3, 12])
def test_online_velocity_matches_offline_on_simulated_worlds(
    tmp_path: Path, redis_url: str, redis_prefix: str, days: int
) -> None:
    df = simulated_world(tmp_path / "w", days=days)
    got = online(df, redis_url, f"{redis_prefix}sim{days}:")
    assert_features_agree(got, offline.tabular_features(df), df)


def test_online_user_windows_match_offline(redis_url: str, redis_prefix: str) -> None:
    """The user's 30-day count and mean and spikes over 7 / 14 days, from the decide script,
    equal `gnn.entitystats.user_rows`' definitions (calendar days, hour buckets, earlier rows
    only), with each user's cached median fixed for the whole replay."""
    from gnn.entitystats import SPIKE_RATIO
    from gnn.features import window_stats
    from realtime.features import USER_WINDOW_FEATURES
    from realtime.keys import EntityStats

    df = small_world(700, 3)
    users = sorted(df["user_id"].unique())
    medians = {u: 40.0 + 10.0 * i for i, u in enumerate(users)}
    medians[users[0]] = float("nan")  # no median yet: never a spike
    keys = Keys(f"{redis_prefix}w:")
    client = redis.Redis.from_url(redis_url)
    for u, med in medians.items():
        client.set(keys.stats("user", u), EntityStats((med,)).dumps())
    client.close()

    async def go() -> list[list[float]]:
        store = VelocityStore(Redis.from_url(redis_url), keys)
        rows = []
        for r in df.itertuples():
            t = key_txn(r.txn_id, r.ts.value / 1e9, r.amount, r.user_id, None, None, None, None)
            state = await store.decide(t)
            assert state.user_window is not None
            rows.append(state.user_window)
        await store.client.aclose()
        return rows

    got = np.asarray(asyncio.run(go()))
    code = pd.factorize(df["user_id"])[0].astype(np.int64)
    us = df["ts"].astype("datetime64[us, UTC]").astype("int64").to_numpy()
    amount = df["amount"].to_numpy()
    n30, total = window_stats(code, us // 86_400_000_000, 30, amount)
    med = df["user_id"].map(medians).to_numpy()
    with np.errstate(invalid="ignore"):
        spike = (amount / med > SPIKE_RATIO).astype(np.float64)
    hour = us // 3_600_000_000
    want = np.column_stack(
        [
            n30,
            np.where(n30 > 0, total / np.maximum(n30, 1), np.nan),
            window_stats(code, hour, 24 * 7, spike)[1],
            window_stats(code, hour, 24 * 14, spike)[1],
        ]
    )
    assert got.shape == (len(df), len(USER_WINDOW_FEATURES))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6, equal_nan=True)
    assert want[:, 2].max() >= 1 and want[:, 0].max() > 10  # the windows are exercised
