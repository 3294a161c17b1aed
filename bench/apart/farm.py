"""A card-payments world of promotion-abuse farms and synthetic-identity bust-outs, written apart
from `world/` from a description of fraud only (`bench rings` scores it held out).

About 9,000 customers over 50 days at 700 merchants of Zipf popularity, diurnal hours. Households
of 1-5 share a home IP, half of the larger ones a tablet, a third a card. Look-alikes: a quarter
of payments through 400 carrier CGNAT IPs of dozens to hundreds of customers each; 6-10 library /
café PCs of 20-80 customers; 15-25 firms whose corporate card 3-8 employees use on their phones
from home and office; cards lent among 2-4 households; 12 power users of 5-12 devices. 24 rings,
half of each kind. Promo farms: 10-40 new accounts made in waves over 5-20 days, one spoofed
device each (10-20% on 2-3 real phones), 2-5 carrier IPs and 1-2 home IPs, 3-8 prepaid cards of
4-12 accounts each, 1-4 small buys at 2-4 promo merchants, 60% reported 5-35 days on. Bust-outs:
4-12 synthetic accounts buy small (labelled legitimate) for 2-5 weeks on 1-2 shared devices, an IP
and unrelated customers' seasoned cards, then max out at electronics shops in 1-3 days; 85% are
charged off 20-60 days later.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.apart import write_csv

COLUMNS = (
    "user=user_id,card=card_id,device=device_id,ip=ip,merchant=merchant_id,amount=amount,"
    "time=ts,label=label,label_time=label_ts,txn=txn_id,ring=ring"
)

DAY = 86400
NDAYS = 50
T_END = NDAYS * DAY
START = pd.Timestamp("2026-04-06T00:00:00")  # a Monday
N_LEGIT = 8600
N_MERCH = 700
N_ELEC = 30
N_RINGS = 24
CARRIER_SIZES = (170, 140, 90)  # 400 CGNAT IPs over three carriers
BAD_FIRST = {0, 10, 100, 127, 169, 172, 192, 198, 203}
FIRST = np.array([o for o in range(1, 224) if o not in BAD_FIRST])
HOUR_W = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 4.5, 5, 6, 5, 4.5, 4.5, 5, 6, 7, 7, 6, 4, 3, 2], float
)
HOUR_W /= HOUR_W.sum()
WORKDAYS = np.array([d for d in range(NDAYS) if d % 7 < 5])


def ip_text(v):
    return [f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}" for x in v]


def write(seed: int, out: Path) -> Path:
    """The world of `seed` as a CSV at `out` (columns for `fraudring load`: `COLUMNS`)."""
    rng = np.random.default_rng(seed)
    cnt = {"c": 0, "d": 0}

    def new(k, n):
        ids = np.array([f"{k}{cnt[k] + i + 1}" for i in range(n)], dtype=object)
        cnt[k] += n
        return ids

    def diurnal(n, lo, hi):
        t = np.full(n, -1.0)
        for _ in range(8):  # resample the few that fall outside a narrow window
            bad = (t < lo) | (t >= hi)
            k = int(bad.sum())
            if not k:
                break
            day = np.floor(rng.uniform(lo, hi, k) / DAY) * DAY
            t[bad] = day + rng.choice(24, k, p=HOUR_W) * 3600 + rng.uniform(0, 3600, k)
        return np.clip(t, lo, hi - 1)

    # ---------- IPs: three carriers' CGNAT pools in a few /16s each, random residential ones
    pools, wts = [], []
    for size in CARRIER_SIZES:
        pre = rng.choice(FIRST, 3) * 256 + rng.integers(0, 256, 3)
        low = rng.choice(256 * 254, size, replace=False)
        v = rng.choice(pre, size) * 65536 + (low // 254) * 256 + low % 254 + 1
        pools.append(np.array(ip_text(np.unique(v)), dtype=object))
        w = rng.gamma(4.0, 1.0, len(pools[-1]))
        wts.append(w / w.sum())
    carrier_all = np.concatenate(pools)
    carrier_w = np.concatenate(wts) / len(wts)
    m = 14000
    v = (
        (rng.choice(FIRST, m) << 24)
        | (rng.integers(0, 256, m) << 16)
        | (rng.integers(0, 256, m) << 8)
        | rng.integers(1, 255, m)
    )
    res_ips = np.setdiff1d(np.array(ip_text(np.unique(v)), dtype=object), carrier_all)
    res_it = iter(rng.permutation(res_ips))

    # ---------- merchants: Zipf popularity; electronics / gift cards; popular promo merchants
    rank = rng.permutation(N_MERCH)
    pop = 1.0 / (rank + 1.0)
    pop /= pop.sum()
    elec = rng.choice(np.flatnonzero((rank >= 3) & (rank < 350)), N_ELEC, replace=False)
    is_elec = np.zeros(N_MERCH, bool)
    is_elec[elec] = True
    promo_pool = np.flatnonzero((rank < 60) & ~is_elec)
    merch_ids = np.array([f"m{i}" for i in rng.permutation(N_MERCH) + 1], dtype=object)

    def legit_amount(merch):
        return np.where(
            is_elec[merch],
            rng.lognormal(math.log(110), 0.9, len(merch)),
            rng.lognormal(math.log(28), 0.9, len(merch)),
        )

    rows: list[dict[str, Any]] = []

    def emit(u, card, dev, ip, merch, amt, t, lab=0, delay=0.0):
        n = len(t)
        rows.append(
            dict(
                u=np.broadcast_to(np.asarray(u), n),
                card=np.broadcast_to(np.asarray(card, dtype=object), n),
                dev=np.broadcast_to(np.asarray(dev, dtype=object), n),
                ip=np.broadcast_to(np.asarray(ip, dtype=object), n),
                merch=merch,
                amt=amt,
                t=t,
                lab=np.broadcast_to(np.asarray(lab), n),
                delay=np.broadcast_to(np.asarray(delay, float), n),
            )
        )

    # ---------- legitimate population
    nu = N_LEGIT
    sizes: list[int] = []
    while sum(sizes) < nu:
        s = int(rng.choice([1, 2, 3, 4, 5], p=[0.4, 0.27, 0.16, 0.11, 0.06]))
        sizes.append(min(s, nu - sum(sizes)))
    n_hh = len(sizes)
    hh = np.repeat(np.arange(n_hh), sizes)
    hsize = np.array(sizes)
    home = np.array([next(res_it) for _ in range(n_hh)], dtype=object)[hh]
    phone = new("d", nu)
    has_lap = rng.random(nu) < 0.33
    laptop = np.full(nu, "", dtype=object)
    laptop[has_lap] = new("d", int(has_lap.sum()))
    h_tab = (hsize >= 2) & (rng.random(n_hh) < 0.5)
    tab = np.full(n_hh, "", dtype=object)
    tab[h_tab] = new("d", int(h_tab.sum()))
    h_card = (hsize >= 2) & (rng.random(n_hh) < 0.33)
    hcard = np.full(n_hh, "", dtype=object)
    hcard[h_card] = new("c", int(h_card.sum()))
    card1 = new("c", nu)
    has_c2 = rng.random(nu) < 0.4
    card2 = np.full(nu, "", dtype=object)
    card2[has_c2] = new("c", int(has_c2.sum()))
    lent = np.full(nu, "", dtype=object)  # a relative's card this customer also pays with
    lenders = set()
    first_of = np.concatenate([[0], np.cumsum(hsize)[:-1]])
    hperm, pos = rng.permutation(n_hh), 0
    for _ in range(110):  # extended families: one card lent among 2-4 households
        span = int(rng.integers(2, 5))
        hs = hperm[pos : pos + span]
        pos += span
        owner = first_of[hs[0]] + int(rng.integers(hsize[hs[0]]))
        lenders.add(int(owner))
        for h in hs[1:]:
            lent[first_of[h] + int(rng.integers(hsize[h]))] = card1[owner]
    carrier = rng.choice(3, nu, p=[0.45, 0.35, 0.2])
    mob = rng.beta(2.0, 6.0, nu)
    n = np.clip(np.rint(rng.lognormal(math.log(8.5), 0.75, nu)), 1, 200).astype(int)

    free = iter(rng.permutation(nu))
    power = [int(next(free)) for _ in range(12)]
    n[power] = rng.integers(40, 121, len(power))
    firms = []
    for _ in range(int(rng.integers(15, 26))):
        staff = [int(next(free)) for _ in range(int(rng.integers(3, 9)))]
        firms.append((staff, next(res_it), new("c", 1)[0]))
    tl_owners = [int(u) for u in free if n[u] >= 10 and u not in lenders][:40]
    n[tl_owners] = np.maximum(n[tl_owners], rng.integers(15, 40, len(tl_owners)))

    uidx = np.repeat(np.arange(nu), n)
    m = len(uidx)
    t = diurnal(m, 0, T_END)
    mobile = rng.random(m) < mob[uidx]
    ip = home[uidx]
    for c in range(3):
        sel = mobile & (carrier[uidx] == c)
        ip[sel] = rng.choice(pools[c], int(sel.sum()), p=wts[c])
    r = rng.random(m)
    dev = phone[uidx]
    sel = ~mobile & (r >= 0.45) & (r < 0.8) & has_lap[uidx]
    dev[sel] = laptop[uidx][sel]
    sel = ~mobile & (r >= 0.8) & h_tab[hh[uidx]]
    dev[sel] = tab[hh[uidx]][sel]
    card = card1[uidx]
    sel = (rng.random(m) < 0.35) & has_c2[uidx]
    card[sel] = card2[uidx][sel]
    sel = (rng.random(m) < 0.2) & h_card[hh[uidx]]
    card[sel] = hcard[hh[uidx]][sel]
    sel = (rng.random(m) < 0.25) & (lent[uidx] != "")
    card[sel] = lent[uidx][sel]
    start_of = np.concatenate([[0], np.cumsum(n)[:-1]])
    for u in power:  # many devices (phones, tablets, laptops, work machines)
        ix = np.arange(start_of[u], start_of[u] + n[u])
        dev[ix] = rng.choice(new("d", int(rng.integers(5, 13))), len(ix))
    for staff, office_ip, corp in firms:  # corporate card on the employee's phone
        for u in staff:
            ix = np.arange(start_of[u], start_of[u] + n[u])
            ix = ix[rng.random(len(ix)) < 0.3] if n[u] > 1 else ix
            if not len(ix):
                ix = np.array([start_of[u]])
            k = len(ix)
            t[ix] = rng.choice(WORKDAYS, k) * DAY + rng.uniform(9 * 3600, 18 * 3600, k)
            card[ix], dev[ix] = corp, phone[u]
            ip[ix] = np.where(rng.random(k) < 0.6, office_ip, home[u])
    merch = rng.choice(N_MERCH, m, p=pop)
    emit(uidx, card, dev, ip, merch, legit_amount(merch), t)
    for _ in range(int(rng.integers(6, 11))):  # library / café PCs on the venue's IP
        pc, vip = new("d", 1)[0], next(res_it)
        for u in rng.choice(nu, int(rng.integers(20, 81)), replace=False):
            k = int(rng.integers(1, 4))
            tv = rng.integers(0, NDAYS, k) * DAY + rng.uniform(10 * 3600, 20 * 3600, k)
            mv = rng.choice(N_MERCH, k, p=pop)
            emit(u, card1[u], pc, vip, mv, legit_amount(mv), tv)

    # ---------- rings
    ring_of: dict[int, str] = {}
    n_users = [nu]

    def accounts(k, rid):
        ids = np.arange(n_users[0], n_users[0] + k)
        n_users[0] += k
        for a in ids:
            ring_of[int(a)] = rid
        return ids

    def farm(rid):
        k = int(rng.integers(10, 41))
        span = int(rng.integers(5, 21))
        w0 = rng.uniform(0, NDAYS - span - 4) * DAY
        waves = np.sort(rng.uniform(w0, w0 + span * DAY, int(rng.integers(2, 6))))
        waves[0] = w0
        created = rng.choice(waves, k) + rng.uniform(0, 0.25 * DAY, k)
        accts = accounts(k, rid)
        devs = new("d", k)  # the emulator spoofs a new device id per account
        n_real = max(2, round(rng.uniform(0.10, 0.20) * k))  # on real phones, 2+ per phone
        real = new("d", min(int(rng.integers(2, 4)), n_real // 2))
        devs[rng.choice(k, n_real, replace=False)] = real[rng.permutation(n_real) % len(real)]
        proxies = rng.choice(carrier_all, int(rng.integers(2, 6)), replace=False, p=carrier_w)
        resid = [next(res_it) for _ in range(int(rng.integers(1, 3)))]
        promos = rng.choice(promo_pool, int(rng.integers(2, 5)), replace=False)
        nc = min(8, k // 3, max(int(rng.integers(3, 9)), -(-k // 10)))
        cards = new("c", nc)
        held: list[list[str]] = [[] for _ in range(k)]
        order = rng.permutation(k)
        for j in range(nc):
            on = list(order[j::nc])
            target = int(np.clip(round(1.5 * k / nc * rng.uniform(0.7, 1.3)), 4, 12))
            rest = [a for a in rng.permutation(k) if a not in on]
            rest.sort(key=lambda a: len(held[a]))
            for a in on + rest[: max(0, target - len(on))]:
                held[a].append(cards[j])
        for i, a in enumerate(accts):
            npay = min(4, max(int(rng.integers(1, 5)), len(held[i])))
            tp = created[i] + np.sort(rng.uniform(0.02, 3.0, npay)) * DAY
            tp[0] = created[i] + rng.uniform(0.02, 1.0) * DAY
            hc = rng.permutation(held[i])
            cp = [hc[j % len(hc)] for j in range(npay)]
            ipp = np.where(
                rng.random(npay) < 0.7, rng.choice(proxies, npay), rng.choice(resid, npay)
            )
            lab = np.where(rng.random(npay) < 0.6, 1, 2)
            amt = rng.lognormal(math.log(14), 0.5, npay)
            delay = rng.uniform(5, 35, npay) * DAY
            emit(a, cp, devs[i], ipp, rng.choice(promos, npay), amt, np.sort(tp), lab, delay)
        return dict(kind="farm", size=k, span=span, start=round(w0 / DAY, 1), cards=nc)

    def bustout(rid):
        k = int(rng.integers(4, 13))
        bust = rng.uniform(12, NDAYS - 4) * DAY
        spread = rng.uniform(14, 21)
        newest = rng.uniform(14, 35 - spread)
        created = bust - (newest + rng.uniform(0, spread, k)) * DAY  # may predate the world
        accts = accounts(k, rid)
        own_dev, shared_ip = new("d", k), next(res_it)
        own_ip = [next(res_it) for _ in range(k)]
        own_cards = [new("c", int(rng.integers(1, 3))) for _ in range(k)]
        shared: list[str] = [""] * k
        perm, pos = rng.permutation(k), 0
        for _ in range(int(rng.integers(1, 3))):
            if k - pos < 2:
                break
            g = int(rng.integers(2, min(4, k - pos) + 1))
            d = new("d", 1)[0]
            for i in perm[pos : pos + g]:
                shared[i] = d
            pos += g
        nt = min(k, int(rng.integers(1, 4)))
        tl = [card1[tl_owners.pop()] for _ in range(nt)]
        tl_of = np.concatenate([np.arange(nt), rng.integers(0, nt, k - nt)])[rng.permutation(k)]
        dur = rng.uniform(1, 3) * DAY
        for i, a in enumerate(accts):
            lo = max(created[i], 0.0)
            nb = max(3, int(rng.poisson(rng.uniform(0.4, 1.0) * (bust - lo) / DAY)))
            tb = diurnal(nb, lo, bust)
            cb = np.where(rng.random(nb) < 0.25, tl[tl_of[i]], rng.choice(own_cards[i], nb))
            cb[int(rng.integers(nb))] = tl[tl_of[i]]
            db = np.where((rng.random(nb) < 0.4) & bool(shared[i]), shared[i], own_dev[i])
            r = rng.random(nb)
            ipb = np.where(r < 0.4, shared_ip, own_ip[i]).astype(object)
            ipb[r > 0.8] = rng.choice(pools[i % 3], int((r > 0.8).sum()))
            mb = rng.choice(N_MERCH, nb, p=pop)
            emit(a, cb, db, ipb, mb, rng.lognormal(math.log(24), 0.6, nb), tb)
            nx = int(rng.integers(3, 11))
            tx = diurnal(nx, bust, bust + dur)
            cx = np.where(rng.random(nx) < 0.35, tl[tl_of[i]], rng.choice(own_cards[i], nx))
            dx = np.where((rng.random(nx) < 0.6) & bool(shared[i]), shared[i], own_dev[i])
            ipx = np.where(rng.random(nx) < 0.6, shared_ip, own_ip[i])
            lab = np.where(rng.random(nx) < 0.85, 1, 2)
            amt = rng.lognormal(math.log(750), 0.6, nx)
            emit(a, cx, dx, ipx, rng.choice(elec, nx), amt, tx, lab, rng.uniform(20, 60, nx) * DAY)
        return dict(kind="bustout", size=k, bust=round(bust / DAY, 1), tradelines=nt)

    kinds = rng.permutation(["farm"] * (N_RINGS // 2) + ["bustout"] * (N_RINGS // 2))
    info = {}
    for j, kind in enumerate(kinds):
        rid = f"F{j + 1:02d}"
        info[rid] = farm(rid) if kind == "farm" else bustout(rid)

    # ---------- assemble, renumber ids, write
    df = pd.DataFrame({c: np.concatenate([r[c] for r in rows]) for c in rows[0]})
    df = df.sort_values("t", kind="stable").reset_index(drop=True)
    assert df.t.min() >= 0 and df.t.max() < T_END
    uname = np.array([f"u{i}" for i in rng.permutation(n_users[0]) + 1], dtype=object)
    ring = np.full(n_users[0], "", dtype=object)
    for a, rid in ring_of.items():
        ring[a] = rid
    for col, prefix in [("card", "c"), ("dev", "d")]:
        codes, uniq = pd.factorize(df[col])
        df[col] = prefix + (rng.permutation(len(uniq)) + 1)[codes].astype(str)
    ids = {
        "user_id": uname[df.u.to_numpy()],
        "card_id": df.card,
        "device_id": df.dev,
        "ip": df.ip,
        "merchant_id": merch_ids[df.merch.to_numpy()],
    }
    return write_csv(Path(out), df, start=START, ids=ids, ring=ring[df.u.to_numpy()])
