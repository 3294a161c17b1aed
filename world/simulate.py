"""Seeded synthetic world: an ordinary population plus planted rings, streamed day by day.

Users, cards, devices, IPs and merchants are index arrays; transactions are generated one day at
a time (vectorised), sorted by time and appended to Parquet, so memory stays flat from ten
thousand to ten million transactions. Each day draws from its own child seed
(``SeedSequence(seed, spawn_key=(3, day))``), so output is byte-identical for a seed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudring.errors import InvalidInput
from fraudring.logs import get_logger
from world import schema
from world.io import PARQUET_OPTIONS, write_meta
from world.planted import Ring
from world.population import (
    CAT_IN_STORE,
    CATEGORY_NAMES,
    US_PER_DAY,
    WEEKDAY_WEIGHTS,
    Population,
    build_population,
    draw_amounts,
    draw_times,
    id_strings,
    ip_strings,
    user_count,
)
from world.rings import TYPOLOGIES, Planner
from world.shift import SHIFT_DAYS, Shift
from world.summary import WorldSummary
from world.topology import TOPOLOGIES, add_lookalikes

log = get_logger(__name__)

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
START_US = int(START.timestamp()) * 1_000_000
DIFFICULTIES = ("hard", "easy")
GENERATOR_VERSION = 1


def _check(
    *,
    transactions: int,
    difficulty: str,
    days: int,
    fraud_rate: float,
    label_delay_days: float,
    label_spread_days: float,
) -> None:
    if transactions < 100:
        raise InvalidInput(f"transactions must be at least 100, got {transactions}")
    if difficulty not in DIFFICULTIES:
        raise InvalidInput(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    if not 2 <= days <= 3650:
        raise InvalidInput(f"days must be between 2 and 3650, got {days}")
    if not 0.0 <= fraud_rate <= 0.2:
        raise InvalidInput(f"fraud_rate must be between 0 and 0.2, got {fraud_rate}")
    if label_delay_days < 0 or label_spread_days < 0:
        raise InvalidInput("label_delay_days and label_spread_days must be >= 0")


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    return values.take(pa.array(idx, type=pa.int64(), mask=idx < 0))


def _legit_day(
    rng: np.random.Generator, pop: Population, *, day: int, n: int
) -> dict[str, np.ndarray]:
    """One day of ordinary activity of every active account (ring accounts included)."""
    active = (pop.created_day <= day) & (pop.end_day >= day)
    w = np.cumsum(pop.rate * active)
    users = np.minimum(np.searchsorted(w, rng.random(n) * w[-1], side="right"), w.shape[0] - 1)
    pick_fav = rng.random(n) < 0.45
    popular = np.searchsorted(pop.merchant_cdf, rng.random(n), side="right")
    popular = np.minimum(popular, pop.merchant_cdf.shape[0] - 1)
    merchant = np.where(pick_fav, pop.fav[users, rng.integers(0, 3, n)], popular)
    amount = draw_amounts(rng, pop, merchant)
    ts = day * US_PER_DAY + draw_times(rng, n)
    in_store = CAT_IN_STORE[pop.merchant_cat[merchant]] & (rng.random(n) < 0.6)
    # Channel: < 0.40 mobile (carrier NAT), < 0.45 travel/public wifi, < 0.55 the office network
    # for users with an office, else home (where a household device may be used).
    channel = rng.random(n)
    office = pop.office_ip[users]
    at_office = (channel >= 0.45) & (channel < 0.55) & (office >= 0)
    at_home = (channel >= 0.45) & ~at_office
    shared = pop.shared_device[users]
    device = np.where(at_home & (shared >= 0) & (rng.random(n) < 0.5), shared, pop.phone[users])
    wifi = pop.wifi_ips[rng.integers(0, pop.wifi_ips.shape[0], n)]
    ip = np.where(
        channel < 0.40, pop.carrier_ip[users], np.where(channel < 0.45, wifi, pop.home_ip[users])
    )
    ip = np.where(at_office, office, ip)
    device = np.where(in_store, -1, device)
    ip = np.where(in_store, -1, ip)
    card2 = pop.card2[users]
    card = np.where((card2 >= 0) & (rng.random(n) < 0.3), card2, pop.card1[users])
    return {
        "ts": ts,
        "user": users,
        "card": card,
        "device": device,
        "ip": ip,
        "merchant": merchant,
        "amount": amount,
        "ring": pop.activity_ring[users].astype(np.int64),
        "fraud": np.zeros(n, dtype=bool),
    }


def _planted_arrays(planner: Planner) -> dict[str, np.ndarray]:
    p = planner.planted
    cols = {
        "ts": np.array(p.ts, dtype=np.int64),
        "user": np.array(p.user, dtype=np.int64),
        "card": np.array(p.card, dtype=np.int64),
        "device": np.array(p.device, dtype=np.int64),
        "ip": np.array(p.ip, dtype=np.int64),
        "merchant": np.array(p.merchant, dtype=np.int64),
        "amount": np.array(p.amount, dtype=np.float64),
        "ring": np.array(p.ring, dtype=np.int64),
    }
    cols["fraud"] = np.ones(len(p), dtype=bool)
    order = np.argsort(cols["ts"], kind="stable")
    return {k: v[order] for k, v in cols.items()}


def generate(
    *,
    out: Path,
    transactions: int,
    seed: int,
    difficulty: str = "hard",
    days: int = 30,
    fraud_rate: float = 0.002,
    label_delay_days: float = 7.0,
    label_spread_days: float = 3.0,
    report_rate: float = 0.93,
    legit_label_rate: float = 0.002,
    topology: str = "dense",
    false_label_rate: float = 0.0,
    shift: bool = False,
    progress: bool = True,
) -> WorldSummary:
    """Write a world directory (see world/schema.py) and return its figures.

    A chargeback arrives ``label_delay_days`` (the minimum) plus an exponential spread of mean
    ``label_spread_days`` after its transaction; ``report_rate`` of fraud is ever reported.
    ``topology`` shapes the rings (`world.topology`; any but ``dense`` also adds the legitimate
    look-alikes); ``false_label_rate`` of legitimate transactions get a fraud label anyway
    (friendly fraud, mistaken chargebacks), so that a label is evidence, not proof. ``shift``
    changes the regime in the last `SHIFT_DAYS` days (`world.shift`): a burst of fraud at
    merchants with no fraud history, and a new device for every device.
    """
    if topology not in TOPOLOGIES:
        raise InvalidInput(f"topology must be one of {TOPOLOGIES}, got {topology!r}")
    if not 0.0 <= false_label_rate <= 0.05:
        raise InvalidInput(f"false_label_rate must be between 0 and 0.05, got {false_label_rate}")
    if shift and days < 2 * SHIFT_DAYS:
        raise InvalidInput(f"shift needs a world of at least {2 * SHIFT_DAYS} days, got {days}")
    _check(
        transactions=transactions,
        difficulty=difficulty,
        days=days,
        fraud_rate=fraud_rate,
        label_delay_days=label_delay_days,
        label_spread_days=label_spread_days,
    )
    t0 = time.perf_counter()

    def child(*key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))

    setup = child(0)
    pop = build_population(setup, n_users=user_count(transactions, days), days=days)
    lookalikes = add_lookalikes(child(4), pop) if topology != "dense" else {}
    planner = Planner(child(1), pop, days=days, difficulty=difficulty, topology=topology)
    planner.plan(round(fraud_rate * transactions))
    planted = _planted_arrays(planner)
    n_fraud = int(planted["ts"].shape[0])
    if n_fraud >= transactions // 2:
        raise InvalidInput(f"fraud_rate {fraud_rate} leaves too few ordinary transactions")
    weights = WEEKDAY_WEIGHTS[(np.arange(days) + START.weekday()) % 7]
    counts = setup.multinomial(transactions - n_fraud, weights / weights.sum())
    planted_day = planted["ts"] // US_PER_DAY
    bounds = np.searchsorted(planted_day, np.arange(days + 1))

    names = child(2)
    ent = pop.entities
    regime = (
        Shift.plan(child(6), pop, planted_merchants=planted["merchant"], days=days)
        if shift
        else None
    )
    ids = {
        "user": id_strings(names, "u", pop.n_users),
        "card": id_strings(names, "c", ent.cards),
        "device": id_strings(names, "d", ent.devices),
        "ip": ip_strings(names, ent.ips),
        "merchant": id_strings(names, "m", ent.merchants),
    }
    ring_ids = pa.array([r.ring_id for r in planner.rings], type=pa.string())
    ring_typ = pa.array([r.typology for r in planner.rings], type=pa.string())
    cat_names = pa.array(CATEGORY_NAMES, type=pa.string())
    seen = {k: np.zeros(len(v), dtype=bool) for k, v in ids.items()}

    out.mkdir(parents=True, exist_ok=True)
    txw = pq.ParquetWriter(out / schema.TRANSACTIONS_FILE, schema.TRANSACTIONS, **PARQUET_OPTIONS)
    trw = pq.ParquetWriter(out / schema.TRUTH_FILE, schema.TRUTH, **PARQUET_OPTIONS)
    label_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    written = 0
    from tqdm import tqdm

    bar = tqdm(
        total=transactions, unit="txn", unit_scale=True, disable=not progress, desc="simulate"
    )
    try:
        for day in range(days):
            rng = child(3, day)
            legit = _legit_day(rng, pop, day=day, n=int(counts[day]))
            lo, hi = int(bounds[day]), int(bounds[day + 1])
            cols = {k: np.concatenate([legit[k], planted[k][lo:hi]]) for k in legit}
            order = np.argsort(cols["ts"], kind="stable")
            cols = {k: v[order] for k, v in cols.items()}
            if regime is not None and day >= regime.from_day:
                regime.apply(child(7, day), cols, fraud_rate=fraud_rate)
            n = int(order.shape[0])
            gidx = np.arange(written, written + n, dtype=np.int64)
            txn_id = pc.binary_join_element_wise(
                "t", pc.utf8_lpad(pc.cast(pa.array(gidx), pa.string()), 10, "0"), ""
            )
            ts_us = START_US + cols["ts"]
            for kind in seen:
                used = cols[kind][cols[kind] >= 0]
                seen[kind][used] = True
            txw.write_table(
                pa.Table.from_arrays(
                    [
                        txn_id,
                        pa.array(ts_us, type=schema.TS),
                        _take(ids["user"], cols["user"]),
                        _take(ids["card"], cols["card"]),
                        _take(ids["device"], cols["device"]),
                        _take(ids["ip"], cols["ip"]),
                        _take(ids["merchant"], cols["merchant"]),
                        pa.array(cols["amount"], type=pa.float64()),
                        pa.array(np.full(n, "USD", dtype=object), type=pa.string()),
                        _take(cat_names, pop.merchant_cat[cols["merchant"]].astype(np.int64)),
                        pa.nulls(n, pa.string()),
                    ],
                    schema=schema.TRANSACTIONS,
                )
            )
            trw.write_table(
                pa.Table.from_arrays(
                    [
                        txn_id,
                        pa.array(cols["fraud"]),
                        _take(ring_ids, cols["ring"]),
                        _take(ring_typ, cols["ring"]),
                        pa.array(pop.member[cols["user"]]),
                    ],
                    schema=schema.TRUTH,
                )
            )
            fraud = cols["fraud"]
            labelled = np.where(
                fraud, rng.random(n) < report_rate, rng.random(n) < legit_label_rate
            )
            delay = (label_delay_days + rng.exponential(label_spread_days, n)) * US_PER_DAY
            mistaken = np.zeros(n, dtype=bool)
            if false_label_rate > 0:
                mistaken = ~fraud & (child(5, day).random(n) < false_label_rate)
                labelled |= mistaken
            label_parts.append(
                (
                    gidx[labelled],
                    (fraud | mistaken)[labelled],
                    ts_us[labelled] + delay[labelled].astype(np.int64),
                )
            )
            written += n
            bar.update(n)
    finally:
        bar.close()
        txw.close()
        trw.close()

    if regime is not None:
        n_fraud += regime.burst_frauds
    lab_idx = np.concatenate([p[0] for p in label_parts])
    lab_val = np.concatenate([p[1] for p in label_parts])
    lab_ts = np.concatenate([p[2] for p in label_parts])
    order = np.lexsort((lab_idx, lab_ts))
    lab_idx, lab_val, lab_ts = lab_idx[order], lab_val[order], lab_ts[order]
    lab_ids = pc.binary_join_element_wise(
        "t", pc.utf8_lpad(pc.cast(pa.array(lab_idx), pa.string()), 10, "0"), ""
    )
    pq.write_table(
        pa.Table.from_arrays(
            [lab_ids, pa.array(lab_val.astype(np.int8)), pa.array(lab_ts, type=schema.TS)],
            schema=schema.LABELS,
        ),
        out / schema.LABELS_FILE,
        **PARQUET_OPTIONS,
    )
    meta = _meta(
        planner.rings,
        seed=seed,
        difficulty=difficulty,
        days=days,
        params={
            "fraud_rate": fraud_rate,
            "label_delay_days": label_delay_days,
            "label_spread_days": label_spread_days,
            "report_rate": report_rate,
            "legit_label_rate": legit_label_rate,
            **(
                {"topology": topology, "false_label_rate": false_label_rate}
                if topology != "dense" or false_label_rate
                else {}
            ),
            **({"shift": regime.as_meta()} if regime is not None else {}),
        },
        counts={
            "transactions": written,
            "fraud_transactions": n_fraud,
            "labels": int(lab_idx.shape[0]),
            "fraud_labels": int(lab_val.sum()),
            **{f"{k}s" if k != "ip" else "ips": int(v.sum()) for k, v in seen.items()},
        },
    )
    if lookalikes:
        meta["lookalikes"] = lookalikes
    write_meta(out, meta)
    seconds = time.perf_counter() - t0
    log.info(
        "world.generated",
        path=str(out),
        transactions=written,
        fraud=n_fraud,
        rings=len(planner.rings),
        seconds=round(seconds, 2),
    )
    return WorldSummary.from_meta(out, meta, seconds=seconds)


def _meta(
    rings: list[Ring],
    *,
    seed: int,
    difficulty: str,
    days: int,
    params: dict[str, Any],
    counts: dict[str, int],
) -> dict[str, Any]:
    by_typ = {t: sum(r.typology == t for r in rings) for t in TYPOLOGIES}
    end = datetime.fromtimestamp(START_US / 1e6 + days * 86400, tz=UTC)
    return {
        "kind": "synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "difficulty": difficulty,
        "days": days,
        "start": START.isoformat(),
        "end": end.isoformat(),
        "params": params,
        "counts": {
            **counts,
            "rings": len(rings),
            "ring_members": sum(len(r.members) for r in rings),
        },
        "rings_by_typology": by_typ,
        "rings": [r.as_meta() for r in rings],
    }
