"""A wallet / P2P world of money-mule networks and scam collector rings, written apart from
`world/` from a description of fraud only (`bench rings` scores it held out).

About 10,000 customers over 60 days pay 700 merchants (Zipf, diurnal) by card from the phone and
home IP (households of 1-5 share it, half of the larger ones a tablet; 300 carrier IPs, 40 VPN
exits) and send P2P transfers (no card; sender's device and IP). Look-alikes: 60 landlords of 3-25
tenants and 3-5 managers of 40-80 paid monthly; friend groups of 4-12 splitting bills weekly;
parents paying children, couples; 45 traders paid by 30-200 customers; 10 employers paying 3-15
staff fortnightly. 24 rings, half of each kind. Mule networks: 6-25 mules (a third new, the rest
recruited customers) on 2-4 shared devices and VPN exits; victims pay layer 1, which forwards
80-95% within hours to layer 2, then to cash-outs buying gift cards / crypto, in 2-6 waves over
10-40 days (victims reported 70%, 1-20 days on). Collectors: 3-8 new accounts on 1-2 devices and a
home IP, 5-30 victims each paying weekly (60%, 5-45 days), swept to a boss every 2-5 days. Mule
to mule, sweeps and cash-outs are reported 40%, 10-40 days on.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.apart import write_csv

COLUMNS = (
    "user=user_id,card=card_id,device=device_id,ip=ip,merchant=merchant_id,payee=payee_id,"
    "amount=amount,time=ts,label=label,label_time=label_ts,txn=txn_id,ring=ring"
)

DAY = 86400.0
HOUR = 3600.0
NDAYS = 60
T_END = NDAYS * DAY
START = pd.Timestamp("2026-03-02T00:00:00")  # a Monday
N_CUST = 9850
N_MERCH = 700
N_CASHM = 14  # gift-card shops and crypto exchanges
N_RINGS = 24
LATE = (0.4, 10, 40)  # mule-to-mule, sweeps, cash-outs: 40% reported 10-40 days on
HOURS = np.array(
    [0.8, 0.4, 0.2, 0.2, 0.2, 0.5, 1.2, 2.2, 3, 3.8, 4.5, 5, 6, 5.5, 4.8, 4.6, 5, 6, 6.8, 7, 6.2,
     4.5, 3, 1.8],
    float,
)  # fmt: skip
HOURS /= HOURS.sum()
NOT_PUBLIC = {0, 10, 100, 127, 169, 172, 192, 198, 203}
OCTET1 = np.array([o for o in range(1, 224) if o not in NOT_PUBLIC])
NAMES = ("u", "t", "amt", "dev", "ip", "card", "merch", "payee", "lab", "delay")
KINDS = (np.int64, float, float, object, object, object, np.int64, np.int64, np.int64, float)


def write(seed: int, out: Path) -> Path:
    """The world of `seed` as a CSV at `out` (columns for `fraudring load`: `COLUMNS`)."""
    rng = np.random.default_rng(seed)
    made = {"c": 0, "d": 0}

    def new(kind: str, n: int) -> np.ndarray:
        ids = np.array([f"{kind}{made[kind] + i + 1}" for i in range(n)], dtype=object)
        made[kind] += n
        return ids

    def clock(days: Any):
        d = np.clip(np.floor(np.atleast_1d(np.asarray(days, float))), 0, NDAYS - 1)
        return d * DAY + rng.choice(24, d.size, p=HOURS) * HOUR + rng.uniform(0, HOUR, d.size)

    def lognorm(mid: float, sd: float, n: int):
        return rng.lognormal(math.log(mid), sd, n)

    # ---------- IPs: residential ones, a carrier CGNAT pool, VPN exits
    m = 16000
    v = (rng.choice(OCTET1, m) << 24) | (rng.integers(0, 65536, m) << 8) | rng.integers(1, 255, m)
    v = rng.permutation(np.unique(v))
    all_ips = np.array([".".join(str(x >> b & 255) for b in (24, 16, 8, 0)) for x in v], object)
    carrier_ips, vpn_ips = all_ips[:300], all_ips[300:340]
    res_it = iter(all_ips[340:].tolist())

    # ---------- merchants: Zipf popularity; a few gift-card / crypto merchants
    rank = rng.permutation(N_MERCH)
    pop = 1.0 / (rank + 1.0) ** 1.05
    pop /= pop.sum()
    cash_m = rng.choice(np.flatnonzero((rank >= 30) & (rank < 400)), N_CASHM, replace=False)
    is_cash = np.isin(np.arange(N_MERCH), cash_m)
    merch_ids = np.array([f"m{i}" for i in rng.permutation(N_MERCH) + 1], dtype=object)

    rows: list[list[np.ndarray]] = []

    def emit(u, t, amt, dev, ip, *, card="", merch=-1, payee=-1, rep=None) -> None:
        """rep = (share reported, min, max days until reported) marks the rows as fraud."""
        tt = np.atleast_1d(np.asarray(t, float))
        lab: Any = np.where(rng.random(tt.size) < rep[0], 1, 2) if rep else 0
        delay: Any = rng.uniform(rep[1], rep[2], tt.size) * DAY if rep else 0.0
        vals = (u, tt, amt, dev, ip, card, merch, payee, lab, delay)
        cols = zip(vals, KINDS, strict=True)
        rows.append([np.broadcast_to(np.asarray(x, d), tt.size) for x, d in cols])

    def victim(vic: int, to: int, tt: np.ndarray, amt: np.ndarray, rep: tuple[float, ...]):
        emit(vic, tt, amt, phone[vic], net(np.full(len(tt), vic)), payee=to, rep=rep)
        return list(zip(tt.tolist(), amt.tolist(), strict=True))

    # ---------- customers: households sharing a home IP, some a tablet
    sizes: list[int] = []
    while sum(sizes) < N_CUST:
        s = int(rng.choice([1, 2, 3, 4, 5], p=[0.38, 0.3, 0.16, 0.11, 0.05]))
        sizes.append(min(s, N_CUST - sum(sizes)))
    hsize = np.array(sizes)
    hh = np.repeat(np.arange(len(sizes)), sizes)
    first_of = np.concatenate([[0], np.cumsum(hsize)[:-1]])
    home = np.array([next(res_it) for _ in sizes], dtype=object)[hh]
    phone = new("d", N_CUST)
    h_tab = (hsize >= 2) & (rng.random(len(sizes)) < 0.5)
    tab = np.where(h_tab, new("d", len(sizes)), "").astype(object)
    card1 = new("c", N_CUST)
    has2 = rng.random(N_CUST) < 0.4
    card2 = np.where(has2, new("c", N_CUST), card1)
    mob = rng.beta(1.5, 6.0, N_CUST)
    vpn = np.where(rng.random(N_CUST) < 0.04, rng.uniform(0.3, 0.8, N_CUST), 0.0)

    def net(us: np.ndarray):
        r = rng.random(len(us))
        ip = home[us].copy()
        sel = r < mob[us]
        ip[sel] = rng.choice(carrier_ips, int(sel.sum()))
        sel = r > 1 - vpn[us]
        ip[sel] = rng.choice(vpn_ips, int(sel.sum()))
        return ip

    def handset(us: np.ndarray, p_tab: float):
        dev = phone[us].copy()
        sel = (rng.random(len(us)) < p_tab) & h_tab[hh[us]]
        dev[sel] = tab[hh[us]][sel]
        return dev

    def send(src: Any, dst: Any, t: np.ndarray, amt: np.ndarray) -> None:
        s = np.broadcast_to(np.asarray(src, np.int64), len(t))
        emit(s, t, amt, handset(s, 0.08), net(s), payee=dst)

    # card life
    nbuy = np.clip(np.rint(lognorm(7.5, 0.7, N_CUST)), 1, 150).astype(int)
    ub = np.repeat(np.arange(N_CUST), nbuy)
    mb = rng.choice(N_MERCH, len(ub), p=pop)
    amb = np.where(is_cash[mb], lognorm(70, 0.8, len(ub)), lognorm(30, 0.9, len(ub)))
    cb = np.where(has2[ub] & (rng.random(len(ub)) < 0.35), card2[ub], card1[ub])
    tb = clock(rng.integers(0, NDAYS, len(ub)))
    emit(ub, tb, amb, handset(ub, 0.2), net(ub), card=cb, merch=mb)

    # ---------- legitimate transfers (the look-alikes)
    free = iter(rng.permutation(N_CUST).tolist())
    for j in range(60 + int(rng.integers(3, 6))):  # landlords, then property managers
        owner = next(free)
        k = int(rng.integers(3, 26) if j < 60 else rng.integers(40, 81))
        ten = rng.choice(N_CUST, k, replace=False)
        ten = ten[ten != owner]
        rent = np.round(lognorm(1100 if j < 60 else 1350, 0.3, len(ten)), -1)
        due = int(rng.integers(2, 7))
        for month in (0, 30):
            send(ten, owner, clock(due + month + rng.integers(-2, 4, len(ten))), rent)
    for _ in range(330):  # friend groups splitting bills
        g = rng.choice(N_CUST, int(rng.integers(4, 13)), replace=False)
        for w in range(0, NDAYS, 7):
            for _ in range(int(rng.poisson(1.0))):
                payer = int(rng.choice(g))
                others = g[g != payer]
                who = rng.choice(others, int(rng.integers(2, len(others) + 1)), replace=False)
                t0 = clock([w + int(rng.integers(0, 7))])[0]
                tt = np.minimum(t0 + rng.exponential(4 * HOUR, len(who)), T_END - 1)
                send(who, payer, tt, lognorm(22, 0.6, len(who)))
    for _ in range(700):  # parents paying grown children monthly
        par = int(rng.integers(N_CUST))
        kids = rng.choice(N_CUST, int(rng.integers(1, 4)), replace=False)
        kids = kids[kids != par]
        day, amt = int(rng.integers(0, 30)), np.round(lognorm(220, 0.6, len(kids)), -1)
        for month in (0, 30):
            send(par, kids, clock(day + month + rng.integers(0, 3, len(kids))), amt)
    for h in np.flatnonzero((hsize >= 2) & (rng.random(len(sizes)) < 0.5)):  # couples
        a, c = int(first_of[h]), int(first_of[h] + 1)
        for x, y in ((a, c), (c, a)):
            k = int(rng.poisson(2.2))
            send(x, y, clock(rng.integers(0, NDAYS, k)), lognorm(60, 0.9, k))
    for _ in range(45):  # sole traders (hairdresser, tutor, market stall)
        trader = next(free)
        k = int(rng.integers(30, 201))
        payers = rng.choice(N_CUST, k, replace=False)
        payers = np.repeat(payers, np.where(rng.random(k) < 0.3, rng.integers(2, 6, k), 1))
        payers = payers[payers != trader]
        tday = rng.integers(0, NDAYS, len(payers))
        tt = tday * DAY + rng.uniform(9 * HOUR, 19 * HOUR, len(payers))
        send(payers, trader, tt, lognorm(45, 0.7, len(payers)))
    for _ in range(10):  # small employers paying staff fortnightly
        boss = next(free)
        staff = rng.choice(N_CUST, int(rng.integers(3, 16)), replace=False)
        staff = staff[staff != boss]
        office, laptop = next(res_it), new("d", 1)[0]
        wage = np.round(lognorm(1500, 0.3, len(staff)), 2)
        for day in range(int(rng.integers(0, 14)), NDAYS, 14):
            day -= max(0, day % 7 - 4)  # a weekend payday moves to Friday
            tt = day * DAY + 9 * HOUR + rng.uniform(0, 2 * HOUR) + np.arange(len(staff)) * 40
            emit(boss, tt, wage, laptop, office, payee=staff)
    src, dst = rng.integers(0, N_CUST, 2500), rng.integers(0, N_CUST, 2500)  # one-off transfers
    src, dst = src[src != dst], dst[src != dst]
    send(src, dst, clock(rng.integers(0, NDAYS, len(src))), lognorm(50, 1, len(src)))

    # ---------- rings
    ring_of: dict[int, str] = {}
    n_users = [N_CUST]
    xdev: dict[int, str] = {}
    xhome: dict[int, str] = {}

    def accounts(k: int, rid: str) -> np.ndarray:
        ids = np.arange(n_users[0], n_users[0] + k)
        n_users[0] += k
        ring_of.update(dict.fromkeys(ids.tolist(), rid))
        return ids

    def thin_life(a: int, created: float, devs: Any, ips: Any) -> None:
        n = int(rng.integers(2, 9))
        tt = clock(rng.integers(int(created / DAY), NDAYS, n))
        tt = np.where(tt < created, created + rng.uniform(1, 6, n) * HOUR, tt)
        mm, card, amt = rng.choice(N_MERCH, n, p=pop), new("c", 1)[0], lognorm(25, 0.8, n)
        dv, iv = rng.choice(devs, n), rng.choice(ips, n)
        emit(a, np.minimum(tt, T_END - 1), amt, dv, iv, card=card, merch=mm)

    def split(total: float) -> np.ndarray:
        n = math.ceil(total / 9000)
        return np.full(n, total / n)

    def mule_ring(rid: str) -> None:
        k = int(rng.integers(6, 26))
        n_new = round(k * rng.uniform(0.25, 0.42))
        est = np.array([next(free) for _ in range(k - n_new)], dtype=np.int64)
        fresh = accounts(n_new, rid)
        ring_of.update(dict.fromkeys(est.tolist(), rid))
        mem = rng.permutation(np.concatenate([est, fresh]))
        n_cash = int(rng.integers(1, 4))
        n_l2 = max(1, round((k - n_cash) / 3))
        cash, l2, l1 = mem[:n_cash], mem[n_cash : n_cash + n_l2], mem[n_cash + n_l2 :]
        rdev = new("d", int(rng.integers(2, 5)))
        mdevs: dict[int, list[str]] = {int(a): [] for a in mem}
        order, pos = rng.permutation(mem), 0
        for d in rdev:  # each ring device used by 2-5 mules
            g = int(rng.integers(2, 6))
            for a in order[(pos + np.arange(g)) % k]:
                mdevs[int(a)].append(d)
            pos += g
        vips = rng.choice(vpn_ips, int(rng.integers(2, 5)), replace=False)
        span = rng.uniform(10, 40)
        w0 = rng.uniform(1, NDAYS - span - 5) * DAY
        more = w0 + rng.uniform(0, span, int(rng.integers(1, 6))) * DAY
        waves = np.sort(np.concatenate([[w0], more]))
        for a in fresh:
            xdev[int(a)] = mdevs[int(a)][0] if mdevs[int(a)] else new("d", 1)[0]
            xhome[int(a)] = next(res_it)
            created = max(0.0, w0 - rng.uniform(2, 15) * DAY)
            thin_life(int(a), created, [xdev[int(a)]], [xhome[int(a)], *vips])
        for a in est:
            if rng.random() < 0.3:  # a card opened for the mule work
                thin_life(int(a), w0 - DAY, [phone[a], *mdevs[int(a)]], [home[a], *vips])
        nxt1 = {int(a): rng.choice(l2, min(len(l2), int(rng.integers(1, 3))), False) for a in l1}
        nxt2 = {int(a): rng.choice(cash, min(n_cash, int(rng.integers(1, 4))), False) for a in l2}
        shops = rng.choice(cash_m, int(rng.integers(2, 5)), replace=False)
        mcard = {int(a): (card1[a] if a < N_CUST else new("c", 1)[0]) for a in cash}

        def where(a: int, n: int) -> tuple[np.ndarray, np.ndarray]:
            d, ip = (phone[a], home[a]) if a < N_CUST else (xdev[a], xhome[a])
            devs = np.full(n, d, dtype=object)
            if mdevs[a]:
                sel = rng.random(n) < 0.75
                devs[sel] = rng.choice(mdevs[a], int(sel.sum()))
            return devs, np.where(rng.random(n) < 0.65, rng.choice(vips, n), ip)

        def forward(inbox: dict[int, list[tuple[float, float]]], nxt: dict[int, np.ndarray]):
            got: dict[int, list[tuple[float, float]]] = {}
            for a, recv in inbox.items():
                t0 = max(t for t, _ in recv) + rng.uniform(0.5, 6) * HOUR
                total = sum(x for _, x in recv) * rng.uniform(0.8, 0.95)
                to = rng.choice(nxt[a], int(rng.integers(1, len(nxt[a]) + 1)), replace=False)
                for p, share in zip(to, rng.dirichlet(np.full(len(to), 3.0)) * total, strict=True):
                    amt = split(share)
                    tt = t0 + rng.uniform(0, 20 * 60, len(amt))
                    emit(a, tt, amt, *where(a, len(amt)), payee=p, rep=LATE)
                    got.setdefault(int(p), []).extend(zip(tt.tolist(), amt.tolist(), strict=True))
            return got

        for w in waves:
            inbox: dict[int, list[tuple[float, float]]] = {}
            active = l1[rng.random(len(l1)) < 0.7]
            for a in active if len(active) else l1[:1]:
                for _ in range(int(rng.integers(1, 3))):
                    vic, n = next(free), int(rng.integers(1, 4))
                    tt = clock([w / DAY + rng.uniform(0, 1.5)])[0] + np.sort(
                        np.concatenate([[0.0], rng.uniform(0.5, 30, n - 1) * HOUR])
                    )
                    amt = lognorm(650, 0.75, n)
                    inbox.setdefault(int(a), []).extend(victim(vic, a, tt, amt, (0.7, 1, 20)))
            for a, recv in forward(forward(inbox, nxt1), nxt2).items():
                t0 = max(t for t, _ in recv) + rng.uniform(0.5, 12) * HOUR
                total = sum(x for _, x in recv) * rng.uniform(0.85, 1.0)
                n = max(1, round(total / rng.uniform(800, 2500)))
                tt = t0 + np.sort(rng.uniform(0, 6 * HOUR, n))
                amt = np.full(n, total / n) * rng.uniform(0.9, 1.1, n)
                shop = rng.choice(shops, n)
                emit(a, tt, amt, *where(a, n), card=mcard[a], merch=shop, rep=LATE)

    def collector_ring(rid: str) -> None:
        k = int(rng.integers(3, 9))
        accts = accounts(k + 1, rid)
        coll, boss = accts[:k], int(accts[k])
        sdev, shome = new("d", int(rng.integers(1, 3))), next(res_it)
        span = rng.uniform(20, 45)
        w0 = rng.uniform(0, NDAYS - span - 3) * DAY
        w1 = w0 + span * DAY
        xdev[boss], xhome[boss] = new("d", 1)[0], next(res_it)
        thin_life(boss, max(0.0, w0 - rng.uniform(3, 20) * DAY), [xdev[boss]], [xhome[boss]])
        shops = rng.choice(cash_m, int(rng.integers(1, 3)), replace=False)
        got: list[tuple[float, float]] = []
        for i, c in enumerate(coll):  # each collector on one of the 1-2 shared devices
            a, cdev = int(c), sdev[i % len(sdev)]
            cips = [shome, shome, shome, rng.choice(carrier_ips)]
            thin_life(a, max(0.0, w0 - rng.uniform(1, 10) * DAY), [cdev], cips)
            recv: list[tuple[float, float]] = []
            for _ in range(5 + int(25 * rng.beta(1.0, 6.0))):
                vic = next(free)
                s = rng.uniform(w0, w1 - 3 * DAY)
                weeks = np.arange(int(rng.integers(1, 5)))
                tt = s + weeks * 7 * DAY + rng.normal(0, 0.6, len(weeks)) * DAY
                tt = clock(np.floor(tt[tt < w1] / DAY))
                amt = np.minimum(lognorm(280, 0.7, 1) * 1.15 ** np.arange(len(tt)), 6000)
                recv.extend(victim(vic, a, tt, amt, (0.6, 5, 45)))
            last = 0.0
            for t in w0 + np.cumsum(rng.uniform(2, 5, 30)) * DAY:
                if t > w1 + 5 * DAY:
                    break
                tc = clock([t / DAY])[0]
                total = sum(x for tr, x in recv if last <= tr < tc) * rng.uniform(0.85, 1.0)
                if total <= 0 or tc >= T_END - HOUR:
                    continue
                last, amt = tc, split(total)
                tt = tc + np.arange(len(amt)) * 90.0
                ip = np.where(rng.random(len(amt)) < 0.8, shome, rng.choice(carrier_ips, len(amt)))
                emit(a, tt, amt, cdev, ip, payee=boss, rep=LATE)
                got.extend(zip(tt.tolist(), amt.tolist(), strict=True))
        got.sort()
        bcard, last = new("c", 1)[0], w0
        for t in w0 + np.cumsum(rng.uniform(4, 8, 20)) * DAY:  # the boss buys crypto
            tc = clock([t / DAY])[0]
            total = sum(x for tr, x in got if last <= tr < tc) * rng.uniform(0.85, 1.0)
            if total <= 0 or tc >= T_END - 4 * HOUR:
                continue
            last, n = tc, max(1, round(total / rng.uniform(1500, 4000)))
            tt = tc + np.sort(rng.uniform(0, 3 * HOUR, n))
            amt, shop = np.full(n, total / n), rng.choice(shops, n)
            emit(boss, tt, amt, xdev[boss], xhome[boss], card=bcard, merch=shop, rep=LATE)

    kinds = rng.permutation(["mule"] * (N_RINGS // 2) + ["collector"] * (N_RINGS // 2))
    for j, kind in enumerate(kinds):
        rid = f"P{j + 1:02d}"
        (mule_ring if kind == "mule" else collector_ring)(rid)

    # ---------- assemble, renumber ids, write
    df = pd.DataFrame({c: np.concatenate([r[i] for r in rows]) for i, c in enumerate(NAMES)})
    df = df.sort_values("t", kind="stable").reset_index(drop=True)
    assert df.t.min() >= 0 and df.t.max() < T_END
    uname = np.array([f"u{i}" for i in rng.permutation(n_users[0]) + 1], dtype=object)
    ring = np.full(n_users[0], "", dtype=object)
    for a, rid in ring_of.items():
        ring[a] = rid

    def renumber(col: str, prefix: str) -> np.ndarray:
        vals = df[col].to_numpy(dtype=object)
        have = vals != ""
        codes, uniq = pd.factorize(vals[have])
        names = np.array([f"{prefix}{i}" for i in rng.permutation(len(uniq)) + 1], dtype=object)
        res = np.full(len(vals), "", dtype=object)
        res[have] = names[codes]
        return res

    payee, merch, users = df.payee.to_numpy(), df.merch.to_numpy(), df.u.to_numpy()
    ids = {
        "user_id": uname[users],
        "card_id": renumber("card", "c"),
        "device_id": renumber("dev", "d"),
        "ip": df.ip,
        "merchant_id": np.where(merch >= 0, merch_ids[np.maximum(merch, 0)], ""),
        "payee_id": np.where(payee >= 0, uname[np.maximum(payee, 0)], ""),
    }
    return write_csv(Path(out), df, start=START, ids=ids, ring=ring[users])
