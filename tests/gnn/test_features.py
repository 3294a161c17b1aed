"""Offline tabular features against a row-by-row reference written straight from the contract."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnn.features import (
    FEATURE_NAMES,
    GRAPH_FEATURES,
    STATS_FEATURES,
    TABULAR_FEATURES,
    tabular_features,
)

T0 = pd.Timestamp("2026-03-02 00:00:00", tz="UTC").value // 1000  # microseconds, a Monday


def _reference(df: pd.DataFrame) -> pd.DataFrame:
    """Process rows in order, keeping per-entity event lists and last-seen maps (slow, obvious)."""
    events: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    last_seen: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    last_ts: dict[str, float] = {}
    kinds = {"user": "user_id", "card": "card_id", "device": "device_id", "ip": "ip"}
    kinds["merchant"] = "merchant_id"
    rows = []
    for r in df.itertuples(index=False):
        ts = r.ts.value / 1e9
        f: dict[str, float] = {"amount": r.amount, "log_amount": math.log1p(r.amount)}
        f["hour"], f["weekday"] = r.ts.hour, r.ts.weekday()
        ent = {k: getattr(r, c) for k, c in kinds.items()}
        ent = {k: (None if not isinstance(e, str) else e) for k, e in ent.items()}
        for k, e in ent.items():
            for w, size, width in (("1h", 60, 60), ("24h", 3600, 24), ("7d", 3600, 168)):
                if e is None:
                    f[f"{k}_n_{w}"] = f[f"{k}_amt_{w}"] = math.nan
                    continue
                b = math.floor(ts / size)
                ev = [a for (t, a) in events[(k, e)] if b - width + 1 <= math.floor(t / size) <= b]
                f[f"{k}_n_{w}"], f[f"{k}_amt_{w}"] = len(ev), sum(ev)
        for name, (ka, kb) in {
            "user_devices_7d": ("user", "device"),
            "user_cards_7d": ("user", "card"),
            "user_ips_7d": ("user", "ip"),
            "device_users_7d": ("device", "user"),
            "ip_users_7d": ("ip", "user"),
            "card_users_7d": ("card", "user"),
        }.items():
            if ent[ka] is None:
                f[name] = math.nan
                continue
            seen = last_seen[(ka, ent[ka], kb)]
            f[name] = sum(1 for v in seen.values() if v >= ts - 7 * 86400)
        u = ent["user"]
        f["user_secs_since_last"] = ts - last_ts[u] if u in last_ts else math.nan
        for kb in ("device", "card", "ip"):
            m = ent[kb]
            if m is None:
                f[f"user_new_{kb}"] = math.nan
            else:
                seen_at = last_seen[("user", u, kb)].get(m)
                f[f"user_new_{kb}"] = (
                    0.0 if seen_at is not None and seen_at >= ts - 30 * 86400 else 1.0
                )
        rows.append(f)
        for k, e in ent.items():
            if e is not None:
                events[(k, e)].append((ts, r.amount))
        for ka, kb in (("user", "device"), ("user", "card"), ("user", "ip")):
            for a, b in ((ka, kb), (kb, ka)):
                if ent[a] is not None and ent[b] is not None:
                    last_seen[(a, ent[a], b)][ent[b]] = ts
        last_ts[u] = ts
    return pd.DataFrame(rows)[list(TABULAR_FEATURES)]


def _world(seed: int, n: int, span_s: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    offs = np.sort(rng.integers(0, span_s * 1_000_000, size=n))
    pick = lambda prefix, k, p_null: [  # noqa: E731
        None if rng.random() < p_null else f"{prefix}{rng.integers(k)}" for _ in range(n)
    ]
    df = pd.DataFrame(
        {
            "txn_id": [f"t{i:05d}" for i in range(n)],
            "ts": pd.to_datetime(T0 + offs, unit="us", utc=True),
            "user_id": [f"u{x}" for x in rng.integers(0, 6, size=n)],
            "card_id": pick("c", 8, 0.1),
            "device_id": pick("d", 5, 0.2),
            "ip": pick("i", 4, 0.2),
            "merchant_id": pick("m", 3, 0.1),
            "amount": np.round(rng.gamma(2.0, 30.0, size=n), 2),
        }
    )
    return df


def test_feature_names_contract() -> None:
    assert len(TABULAR_FEATURES) == 32
    assert FEATURE_NAMES == TABULAR_FEATURES + GRAPH_FEATURES + STATS_FEATURES
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


@pytest.mark.parametrize("span_s", [3 * 3600, 40 * 86400])
def test_matches_row_by_row_reference(span_s: int) -> None:
    df = _world(3, 400, span_s)
    got = tabular_features(df)
    want = _reference(df)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 60), st.sampled_from([600, 7200, 9 * 86400]))
def test_matches_reference_property(seed: int, n: int, span_s: int) -> None:
    df = _world(seed, n, span_s)
    np.testing.assert_allclose(
        tabular_features(df).to_numpy(), _reference(df).to_numpy(), rtol=1e-9, atol=1e-6
    )


def test_hand_built_semantics() -> None:
    """Same-minute earlier rows count, the row itself does not; a null device gives NaN."""
    ts = pd.to_datetime(
        [T0, T0 + 10_000_000, T0 + 10_000_000, T0 + 3_600_000_000 * 2], unit="us", utc=True
    )
    df = pd.DataFrame(
        {
            "txn_id": ["a", "b", "c", "d"],
            "ts": ts,
            "user_id": ["u1", "u1", "u2", "u1"],
            "card_id": ["c1", "c1", "c1", "c2"],
            "device_id": ["d1", None, "d1", "d1"],
            "ip": [None, None, None, None],
            "merchant_id": ["m", "m", "m", "m"],
            "amount": [10.0, 20.0, 5.0, 1.0],
        }
    )
    f = tabular_features(df)
    assert f["user_n_1h"].tolist() == [0, 1, 0, 0]
    assert f["user_amt_24h"].tolist() == [0, 10, 0, 30]
    assert f["card_n_1h"].tolist() == [0, 1, 2, 0]
    assert math.isnan(f["device_n_1h"][1]) and f["device_n_1h"][2] == 1
    assert f["card_users_7d"].tolist() == [0, 1, 1, 0]
    assert f["device_users_7d"].tolist()[2:] == [1, 2]
    assert f["user_new_device"].tolist()[0] == 1 and math.isnan(f["user_new_device"][1])
    assert f["user_new_device"][3] == 0 and f["user_new_card"][3] == 1
    assert f["user_secs_since_last"].tolist()[1] == 10 and math.isnan(f["user_secs_since_last"][2])
    assert f["weekday"][0] == 0 and f["hour"][3] == 2
    assert np.all(np.isnan(f["ip_n_24h"]))
