"""A relay ring world written apart from `world/`, from a description of fraud rings only, as a
check that the ring rule holds on data it was not built beside (`bench rings` scores it held
out from every synthetic topology, as it does AMLSim).

About 10,000 users over 45 days. Rings of 4-40: 60% new accounts, 40% taken-over established
ones that keep their family's and office's devices and cards; members chained in a random
order, each consecutive pair on a device replaced every 2-5 days, proxy IPs of 2-4 members,
stolen cards of at most 3 (some from a customer who keeps using the card), 3-12 frauds each
within a 5-20 day window, 75% reported 3-30 days later. Look-alikes: households of up to 5
(home IP, a tablet, a card), extended families chained by a card per pair of households, dorms
of 15-40 on one IP, offices of 5-12 on one or two PCs; 8% of every customer's payments come
from a pool of dynamic IPs.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = (
    "user=user_id,card=card_id,device=device_id,ip=ip,merchant=merchant_id,amount=amount,"
    "time=ts,label=label,label_time=label_ts,txn=txn_id,ring=ring"
)

DAYS = 45
T = DAYS * 86400
START = pd.Timestamp("2026-01-01T00:00:00Z")
N_USERS = 10000
N_MERCH = 800
N_RINGS = 20
HOUR_W = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 5, 6, 7, 7, 6, 4, 3, 2], float
)
HOUR_W /= HOUR_W.sum()
WORKDAYS = np.array([d for d in range(DAYS) if (d + 3) % 7 < 5])  # 2026-01-01 is a Thursday


def make_ips(rng, n):
    first = rng.integers(23, 201, 3 * n)
    first = first[~np.isin(first, [127, 169, 172, 192])]
    m = len(first)
    v = (
        (first << 24)
        | (rng.integers(0, 256, m) << 16)
        | (rng.integers(0, 256, m) << 8)
        | rng.integers(1, 255, m)
    )
    v = rng.permutation(np.unique(v))[:n]
    return np.array(
        [f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}" for x in v], dtype=object
    )


def chunk(rng, items, *, lo, hi):
    """Split items into consecutive groups of size lo..hi; a short tail is repaired to reach lo."""
    groups, i = [], 0
    while i < len(items):
        g = int(rng.integers(lo, hi + 1))
        groups.append(list(items[i : i + g]))
        i += g
    if len(groups) > 1 and len(groups[-1]) < lo:
        tail, prev = groups[-1], groups[-2]
        if len(prev) + len(tail) <= hi:
            groups.pop()
            prev.extend(tail)
        else:
            while len(tail) < lo:
                tail.append(prev.pop())
    return groups


def write(seed: int, out: Path) -> Path:
    """The world of `seed` as a CSV at `out` (columns for `fraudring load`: `COLUMNS`)."""
    rng = np.random.default_rng(seed)

    cnt = {"u": 0, "d": 0, "c": 0}

    def new(k):
        cnt[k] += 1
        return f"{k}{cnt[k]}"

    ips = make_ips(rng, 45000)
    ip_it = iter(ips[:20000])
    public = ips[20000:]  # shared pool of cafe / mobile-carrier IPs

    def new_ip():
        return next(ip_it)

    pz = 1.0 / np.arange(1, N_MERCH + 1) ** 1.1
    pz /= pz.sum()
    merch_ids = np.array([f"m{i}" for i in rng.permutation(N_MERCH) + 1], dtype=object)

    def diurnal(n, lo=0.0, *, hi=float(T)):
        t = rng.uniform(lo, hi, n)
        t = (
            np.floor(t / 86400) * 86400
            + rng.choice(24, n, p=HOUR_W) * 3600
            + rng.uniform(0, 3600, n)
        )
        return np.clip(t, lo, hi - 1)

    # ring sizes first: several above 15
    sizes = rng.permutation(
        np.concatenate([rng.integers(16, 41, 6), rng.integers(4, 16, N_RINGS - 6)])
    )
    n_new = np.rint(0.6 * sizes).astype(int)
    n_legit = N_USERS - int(n_new.sum())

    users = []

    def mk_user(home, kind="legit"):
        u = dict(
            id=new("u"),
            home=home,
            dev=[new("d")],
            kind=kind,
            tablet=None,
            hhcard=None,
            link=[],
            office=None,
            cards=[new("c")] + ([new("c")] if rng.random() < 0.4 else []),
        )
        users.append(u)
        return u

    # dorms: 15-40 students on one IP
    for _ in range(8):
        ip = new_ip()
        for _ in range(int(rng.integers(15, 41))):
            mk_user(ip, "dorm")
    # households 1-5 sharing home IP; size>=2 share a tablet and (60%) a card
    households = []
    while len(users) < n_legit:
        s = min(
            int(rng.choice([1, 2, 3, 4, 5], p=[0.45, 0.25, 0.15, 0.10, 0.05])), n_legit - len(users)
        )
        ip = new_ip()
        mem = [mk_user(ip) for _ in range(s)]
        if s >= 2:
            tab = new("d")
            card = new("c") if rng.random() < 0.6 else None
            for u in mem:
                u["tablet"], u["hhcard"] = tab, card
        households.append(mem)
    # extended families: chains of 3-5 households, one shared card per adjacent pair
    hperm = rng.permutation(len(households))
    pos = 0
    for _ in range(150):
        span = int(rng.integers(3, 6))
        families = [households[i] for i in hperm[pos : pos + span]]
        pos += span
        for h1, h2 in itertools.pairwise(families):
            c = new("c")
            for h in (h1, h2):
                h[int(rng.integers(len(h)))]["link"].append(c)
    # small offices: 5-12 people sharing 1-2 PCs and an office IP on workdays
    hh_users = [u for h in households for u in h]
    pick = rng.permutation(len(hh_users))
    pos = 0
    for _ in range(60):
        s = int(rng.integers(5, 13))
        off = dict(ip=new_ip(), pcs=[new("d") for _ in range(int(rng.integers(1, 3)))])
        for i in pick[pos : pos + s]:
            hh_users[i]["office"] = off
        pos += s

    cols: dict[str, list[Any]] = {
        k: [] for k in ["user", "card", "dev", "ip", "merch", "amount", "t", "fraud"]
    }

    def emit(uid, card, *, dev, ip, merch, amt, t, fraud):
        n = len(t)
        cols["user"].extend([uid] * n)
        cols["card"].extend(card)
        cols["dev"].extend(dev)
        cols["ip"].extend(ip)
        cols["merch"].extend(merch_ids[merch])
        cols["amount"].extend(amt)
        cols["t"].extend(t)
        cols["fraud"].extend([fraud] * n)

    # legit transactions
    ntx = {}
    for u in users:
        n = int(min(400, max(1, round(rng.lognormal(math.log(17) - 0.5, 1.0)))))
        ntx[u["id"]] = n
        t = diurnal(n)
        dev = np.full(n, u["dev"][0], dtype=object)
        if u["tablet"]:
            dev[rng.random(n) < 0.15] = u["tablet"]
        sec = rng.random(n) < 0.02
        if sec.any():
            if len(u["dev"]) < 2:
                u["dev"].append(new("d"))
            dev[sec] = u["dev"][1]
        ip = np.full(n, u["home"], dtype=object)
        pub = rng.random(n) < 0.08
        ip[pub] = rng.choice(public, int(pub.sum()))
        card = np.full(n, u["cards"][0], dtype=object)
        if len(u["cards"]) > 1:
            card[rng.random(n) < 0.3] = u["cards"][1]
        if u["hhcard"]:
            card[rng.random(n) < 0.3] = u["hhcard"]
        for lc in u["link"]:
            card[rng.random(n) < 0.2] = lc
        if u["office"]:
            o = rng.random(n) < 0.3
            k = int(o.sum())
            t[o] = rng.choice(WORKDAYS, k) * 86400 + rng.uniform(9 * 3600, 17 * 3600, k)
            dev[o] = rng.choice(u["office"]["pcs"], k)
            ip[o] = u["office"]["ip"]
        emit(
            u["id"],
            card,
            dev=dev,
            ip=ip,
            merch=rng.choice(N_MERCH, n, p=pz),
            amt=rng.lognormal(math.log(30), 0.9, n),
            t=t,
            fraud=0,
        )

    # rings
    eligible = [u for u in users if ntx[u["id"]] >= 5]
    eligible = [eligible[i] for i in rng.permutation(len(eligible))]
    ring_of, ring_info, victims = {}, [], []
    for k, s in enumerate(sizes):
        s = int(s)
        rid = f"R{k + 1:02d}"
        span = int(rng.integers(5, 21))
        w0 = rng.uniform(0, DAYS - span) * 86400
        w1 = w0 + span * 86400
        takes = [eligible.pop() for _ in range(s - n_new[k])]
        news = [
            dict(id=new("u"), dev=[new("d")], cards=[new("c")], kind="ring_new")
            for _ in range(n_new[k])
        ]
        members = takes + news
        for m in members:
            ring_of[m["id"]] = rid
        chain = [members[i] for i in rng.permutation(s)]
        # rotating pair devices: pair j = (chain[j], chain[j+1]); new device every 2-5 days
        pair_segs = []
        for _ in range(s - 1):
            segs, t = [], w0
            while t < w1:
                d = rng.uniform(2, 5) * 86400
                segs.append((t + d, new("d")))
                t += d
            pair_segs.append(segs)
        # proxy IPs shared by 2-4 members (never the whole ring)
        proxy = {}
        for g in chunk(rng, rng.permutation(s), lo=2, hi=min(4, s - 1)):
            ip = new_ip()
            for i in g:
                proxy[i] = ip
        # stolen cards: each used by <= 3 members; second pass gives ~half the members a 2nd card
        mcards: dict[int, list[str]] = {i: [] for i in range(s)}
        cgroups = chunk(rng, rng.permutation(s), lo=1, hi=3)
        half = rng.permutation(s)[: s // 2]
        cgroups += chunk(rng, half, lo=1, hi=2)
        cg_cards = [new("c") for _ in cgroups]
        nv = int(rng.integers(0, 3))
        for j in rng.permutation(len(cgroups))[
            :nv
        ]:  # card stolen from a legit account who keeps using it
            v = eligible.pop()
            victims.append(v["id"])
            cg_cards[j] = v["cards"][0]
        for g, c in zip(cgroups, cg_cards, strict=True):
            for i in g:
                mcards[i].append(c)
        for p, m in enumerate(chain):
            mine = [j for j in (p - 1, p) if 0 <= j < s - 1]
            n = int(rng.integers(3, 13))
            t = np.sort(rng.uniform(w0, w1, n))
            devs: list[str] = []
            for tt in t:
                segs = pair_segs[mine[int(rng.integers(len(mine)))]]
                devs.append(next(d for end, d in segs if tt < end))
            ip = np.where(rng.random(n) < 0.8, proxy[p], rng.choice(public, n))
            card = rng.choice(np.array(mcards[p], dtype=object), n)
            amt = rng.lognormal(math.log(90), 0.8, n)
            merch = rng.integers(0, N_MERCH, n)
            emit(m["id"], card, dev=devs, ip=ip, merch=merch, amt=amt, t=t, fraud=1)
            if (
                m["kind"] == "ring_new"
            ):  # first txn = account creation, a few small legit-looking ones
                n2 = int(rng.integers(2, 6))
                c0 = w0 - rng.uniform(0, min(10.0, w0 / 86400)) * 86400
                t2 = np.concatenate([[c0], rng.uniform(c0, w1, n2 - 1)])
                ip2 = np.where(rng.random(n2) < 0.5, proxy[p], rng.choice(public, n2))
                emit(
                    m["id"],
                    [m["cards"][0]] * n2,
                    dev=[m["dev"][0]] * n2,
                    ip=ip2,
                    merch=rng.choice(N_MERCH, n2, p=pz),
                    amt=rng.lognormal(math.log(15), 0.6, n2),
                    t=t2,
                    fraud=0,
                )
        ring_info.append((rid, s, len(takes), len(news), span, round(w0 / 86400, 1), nv))

    df = pd.DataFrame(cols).sort_values("t", kind="stable").reset_index(drop=True)
    for col, pre in [
        ("user", "u"),
        ("card", "c"),
        ("dev", "d"),
    ]:  # random id renumbering (no order leakage)
        codes, uniq = pd.factorize(df[col])
        if col == "user":
            umap = dict(zip(uniq, [f"u{x}" for x in rng.permutation(len(uniq)) + 1], strict=True))
            df[col] = df[col].map(umap)
        else:
            df[col] = pre + (rng.permutation(len(uniq)) + 1)[codes].astype(str)
    ring_col = pd.Series(ring_of).rename(index=umap)
    fraud = df["fraud"].to_numpy() == 1
    rep = fraud & (rng.random(len(df)) < 0.75)
    ts = START + pd.to_timedelta(np.floor(df["t"]).astype(np.int64), unit="s")
    delay = np.clip(rng.lognormal(math.log(9), 0.55, len(df)), 3, 30) * 86400
    lts = START + pd.to_timedelta(np.floor(df["t"] + delay).astype(np.int64), unit="s")
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    table = pd.DataFrame(
        {
            "txn_id": ["t" + str(i) for i in range(1, len(df) + 1)],
            "user_id": df["user"],
            "card_id": df["card"],
            "device_id": df["dev"],
            "ip": df["ip"],
            "merchant_id": df["merch"],
            "amount": np.clip(np.round(df["amount"].to_numpy(), 2), 1.0, 9999.99),
            "ts": ts.dt.strftime(fmt),
            "label": np.where(rep, "1", np.where(fraud, "", "0")),
            "label_ts": np.where(rep, lts.dt.strftime(fmt), ""),
            "ring": df["user"].map(ring_col).fillna(""),
        }
    )
    table.to_csv(path := Path(out), index=False, float_format="%.2f")
    return path
