"""Parity: a small world replayed through the online velocity script (real Redis) gives the same
features as the offline, vectorised trainer code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from redis.asyncio import Redis

from gnn import features as offline
from realtime import features as online
from realtime.keys import Keys
from realtime.velocity import VelocityStore
from tests.realtime_support import key_txn


def _replay(url: str, prefix: str, txns: pd.DataFrame) -> np.ndarray:
    async def go() -> list[list[float]]:
        client = Redis.from_url(url)
        store = VelocityStore(client, Keys(prefix))
        rows = []
        try:
            for r in txns.itertuples(index=False):
                ts = r.ts.value / 1e9

                def opt(v: object) -> str | None:
                    return v if isinstance(v, str) else None

                t = key_txn(
                    txn_id=r.txn_id,
                    ts=ts,
                    amount=float(r.amount),
                    user_id=r.user_id,
                    card_id=opt(r.card_id),
                    device_id=opt(r.device_id),
                    ip=opt(r.ip),
                    merchant_id=opt(r.merchant_id),
                )
                state = await store.decide(t)
                assert state.status == "ok" and state.velocity is not None
                rows.append(online.request_features(amount=t.amount, ts=ts) + state.velocity)
        finally:
            await client.aclose()
        return rows

    return np.asarray(asyncio.run(go()), dtype=np.float64)


@pytest.mark.parametrize("days", [3, 12])
def test_online_and_offline_features_agree(
    tmp_path: Path, redis_url: str, redis_prefix: str, days: int
) -> None:
    from world.simulate import generate

    generate(out=tmp_path / "w", transactions=1500, seed=11, days=days, progress=False)
    txns = pd.read_parquet(tmp_path / "w" / "transactions.parquet")
    txns = txns.sort_values(["ts", "txn_id"], kind="mergesort").reset_index(drop=True)
    got_offline = offline.tabular_features(txns).to_numpy()
    got_online = _replay(redis_url, redis_prefix, txns)
    assert got_online.shape == got_offline.shape
    bad = ~np.isclose(got_online, got_offline, rtol=1e-6, atol=1e-4, equal_nan=True)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        name = offline.TABULAR_FEATURES[c]
        pytest.fail(
            f"{bad.sum()} mismatches; first: row {r} {name}: "
            f"online {got_online[r, c]} offline {got_offline[r, c]}"
        )
