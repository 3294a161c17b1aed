"""A card-payments world of account-takeover, card-testing and bust-out rings, written apart
from `world/` from a description of fraud only (`bench rings` scores it held out).

About 7,850 customers over 40 days at 600 merchants of Zipf popularity. Households of 1-4 share
a home IP; a third of the larger ones also share a tablet and a quarter a joint card; 5% of
cards are lent to 1-3 relatives living apart; three campus IPs serve 100-300 students each, and
a fifth of payments come through 300 carrier NAT IPs. Eighteen rings, six of each kind:
takeover crews that seize 3-8 batches of 5-25 established accounts, run each batch from 1-2
phones and spend on the victims' own cards at cash-out merchants through 3-6 proxy IPs within
1-5 days; card-testing farms of 2-4 devices, 1-3 IPs and 5-20 new accounts that try 20-60
stolen cards per device with tiny amounts at small shops, then cash out a tenth of them 2-5
days later on another farm device; bust-out rings of 4-15 synthetic accounts on 1-2 devices and
IPs that buy small (labelled legitimate) for two to three weeks, then spend big within 48 hours.
80% of fraud is reported about a week later (2-25 days); the ring column marks every payment of
a ring-held account, the victims' own included.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = (
    "user=user_id,card=card_id,device=device_id,ip=ip,merchant=merchant_id,amount=amount,"
    "time=ts,label=label,label_time=label_ts,txn=txn_id,ring=ring"
)

DAY, HOUR = 86400, 3600
NDAYS = 40
START = pd.Timestamp("2026-03-01T00:00:00")
N_LEGIT = 7850
N_MERCH = 600
P_REPORT = 0.8
HOUR_W = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 4, 4.5, 5, 5.5, 5, 4.5, 4.5, 5, 5.5, 6, 6, 5, 4, 3, 2],
    float,
)
HOUR_W /= HOUR_W.sum()
BAD_OCTETS = {10, 127, 169, 172, 192}
FMT = "%Y-%m-%dT%H:%M:%SZ"


class _World:
    """One seed's world; every draw comes from `rng` in a fixed order."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.used: dict[str, set[int]] = {"u": set(), "d": set(), "c": set()}
        self.used_ips: set[str] = set()
        self.merchants = [f"m{i}" for i in range(1, N_MERCH + 1)]
        self.rows: list[tuple[Any, ...]] = []
        self.ring_of: dict[str, str] = {}

    # ---------- random unique ids and IPs: ids carry no grouping information
    def _ids(self, prefix, lo, *, hi, n):
        made: list[str] = []
        while len(made) < n:
            x = int(self.rng.integers(lo, hi))
            if x not in self.used[prefix]:
                self.used[prefix].add(x)
                made.append(f"{prefix}{x}")
        return made

    def new_user(self, n=1):
        return self._ids("u", lo=100000, hi=1000000, n=n)

    def new_dev(self, n=1):
        return self._ids("d", lo=100000, hi=1000000, n=n)

    def new_card(self, n=1):
        return self._ids("c", lo=1000000, hi=10000000, n=n)

    def new_ips(self, n, prefix=None):
        rng = self.rng
        made: list[str] = []
        while len(made) < n:
            if prefix is None:
                a = int(rng.integers(11, 221))
                if a in BAD_OCTETS:
                    continue
                b = int(rng.integers(0, 256))
            else:
                a, b = prefix
            s = f"{a}.{b}.{int(rng.integers(0, 256))}.{int(rng.integers(1, 255))}"
            if s not in self.used_ips:
                self.used_ips.add(s)
                made.append(s)
        return made

    def delay_days(self):
        """Reporting delay: lognormal, median ~7 days, within 2..25."""
        return float(np.clip(np.exp(self.rng.normal(np.log(7), 0.55)), 2, 24.5))

    # ---------- merchants: Zipf popularity, random ids, cash-out and small test merchants
    def merchant_mix(self):
        rng = self.rng
        rank_of = rng.permutation(N_MERCH)  # merchant index -> popularity rank
        pop = 1.0 / (rank_of + 1.0) ** 1.1
        self.pop = pop / pop.sum()
        by_rank = np.argsort(rank_of)  # rank -> merchant index
        self.cashout = rng.choice(by_rank[15:150], 15, replace=False)  # electronics, gift cards
        self.small_m = rng.choice(by_rank[350:], 60, replace=False)  # tiny long-tail shops
        m_scale = np.exp(rng.normal(0, 0.45, N_MERCH))
        m_scale[self.cashout] = 5.0 * np.exp(rng.normal(0, 0.3, 15))
        m_scale[self.small_m] *= 0.6
        self.m_scale = m_scale

    # ---------- legitimate population: households, shared devices and cards, campuses
    def population(self):
        rng = self.rng
        self.uids = self.new_user(N_LEGIT)
        hh_of = np.empty(N_LEGIT, int)
        i = h = 0
        while i < N_LEGIT:
            s = min(int(rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.18, 0.12])), N_LEGIT - i)
            hh_of[i : i + s] = h
            i += s
            h += 1
        n_hh = h
        self.hh_of = hh_of
        self.home_ip = np.array(self.new_ips(n_hh))
        carrier_prefixes: list[tuple[int, int]] = []
        while len(carrier_prefixes) < 3:
            a = int(rng.integers(11, 221))
            if a not in BAD_OCTETS:
                carrier_prefixes.append((a, int(rng.integers(0, 256))))
        # 300 CGNAT IPs
        self.carrier = np.array([x for p in carrier_prefixes for x in self.new_ips(100, p)])
        self.campus_ips = np.array(self.new_ips(3))

        hh_members: list[list[int]] = [[] for _ in range(n_hh)]
        for u in range(N_LEGIT):
            hh_members[hh_of[u]].append(u)
        user_devs: list[list[str]] = [[] for _ in range(N_LEGIT)]
        user_cards: list[list[str]] = [[] for _ in range(N_LEGIT)]
        card_w: list[list[float]] = [[] for _ in range(N_LEGIT)]
        own_cards: list[list[str]] = [[] for _ in range(N_LEGIT)]
        for u in range(N_LEGIT):
            user_devs[u] = self.new_dev(int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2])))
            own_cards[u] = self.new_card(int(rng.choice([1, 2], p=[0.7, 0.3])))
            user_cards[u] = list(own_cards[u])
            card_w[u] = [1.0] * len(own_cards[u])
        for mem in hh_members:
            if len(mem) < 2:
                continue
            if rng.random() < 0.35:  # shared household tablet / laptop
                d = self.new_dev()[0]
                for u in mem:
                    user_devs[u].append(d)
            if rng.random() < 0.25:  # joint card
                c = own_cards[mem[0]][0]
                for u in mem[1:]:
                    user_cards[u].append(c)
                    card_w[u].append(0.6)
        all_own = [(u, c) for u in range(N_LEGIT) for c in own_cards[u]]
        fam_idx = rng.choice(len(all_own), int(0.05 * len(all_own)), replace=False)
        for k in fam_idx:  # family card: relatives living apart
            owner, c = all_own[k]
            for r in rng.choice(N_LEGIT, int(rng.integers(1, 4)), replace=False):
                if hh_of[r] != hh_of[owner] and c not in user_cards[r]:
                    user_cards[r].append(c)
                    card_w[r].append(0.4)
        campus_of = np.full(N_LEGIT, -1)
        free = rng.permutation(N_LEGIT)
        pos = 0
        for ci in range(3):  # university campus IPs, 100-300 users each
            k = int(rng.integers(100, 301))
            campus_of[free[pos : pos + k]] = ci
            pos += k
        self.user_devs, self.user_cards, self.card_w = user_devs, user_cards, card_w
        self.own_cards, self.all_own, self.campus_of = own_cards, all_own, campus_of

    def legit(self):
        """Legitimate payments, vectorised: favourite merchants, own and shared devices, cards."""
        rng = self.rng
        rate = rng.gamma(2.0, 9.5, N_LEGIT)
        self.cnt = rng.poisson(rate) + 1
        uid = np.repeat(np.arange(N_LEGIT), self.cnt)
        n = len(uid)
        ts = (
            rng.integers(0, NDAYS, n) * DAY
            + rng.choice(24, n, p=HOUR_W) * HOUR
            + rng.integers(0, HOUR, n)
        ).astype(float)
        fav = rng.choice(N_MERCH, (N_LEGIT, 6), p=self.pop)
        merch = np.where(
            rng.random(n) < 0.6,
            fav[uid, rng.integers(0, 6, n)],
            rng.choice(N_MERCH, n, p=self.pop),
        )
        user_devs, user_cards, card_w = self.user_devs, self.user_cards, self.card_w
        dmax, cmax = max(map(len, user_devs)), max(map(len, user_cards))
        dev_mat = np.array([d + [""] * (dmax - len(d)) for d in user_devs])
        dev_n = np.array([len(d) for d in user_devs])
        dev = dev_mat[uid, (rng.random(n) * dev_n[uid]).astype(int)]
        card_mat = np.array([c + [""] * (cmax - len(c)) for c in user_cards])
        w = np.array([x + [0.0] * (cmax - len(x)) for x in card_w])
        cum = np.cumsum(w, 1) / w.sum(1, keepdims=True)
        cidx = np.minimum((rng.random(n)[:, None] > cum[uid]).sum(1), cmax - 1)
        card = card_mat[uid, cidx]
        r = rng.random(n)
        stud = self.campus_of[uid] >= 0
        ip = np.where(
            r < 0.2,
            self.carrier[rng.integers(0, 300, n)],
            np.where(
                stud & (rng.random(n) < 0.5),
                self.campus_ips[np.maximum(self.campus_of[uid], 0)],
                self.home_ip[self.hh_of[uid]],
            ),
        )
        amt = np.clip(np.exp(rng.normal(np.log(28), 0.9, n)) * self.m_scale[merch], 0.5, 9999.99)
        return pd.DataFrame(
            {
                "user_id": np.array(self.uids)[uid],
                "card_id": card,
                "device_id": dev,
                "ip": ip,
                "merchant_id": np.array(self.merchants)[merch],
                "amount": amt,
                "ts": ts,
                "fraud": 0,
                "reported": 0,
                "delay": 0.0,
            }
        )

    # ---------- fraud rings
    def add(self, u, c, *, d, ipx, m, a, t, fraud, rep=0, dl=0.0):
        m, a, t = self.merchants[int(m)], float(np.clip(a, 0.5, 9999.99)), float(t)
        dl += self.rng.random() * 0.5 if fraud else 0.0
        self.rows.append((u, c, d, ipx, m, a, t, fraud, rep, dl))

    def takeover(self, gid, established):
        """A crew of phones taking over established accounts, spending through proxies."""
        rng = self.rng
        proxies = self.new_ips(int(rng.integers(3, 7)))
        for _ in range(int(rng.integers(3, 9))):
            phones = self.new_dev(int(rng.integers(1, 3)))
            for _ in range(int(rng.integers(5, 26))):
                v = int(next(established))
                self.ring_of[self.uids[v]] = gid
                phone = phones[int(rng.integers(len(phones)))]
                dur = rng.uniform(1, 5) * DAY
                t0 = rng.uniform(2 * DAY, NDAYS * DAY - dur - HOUR)
                ms = rng.choice(self.cashout, int(rng.integers(2, 6)), replace=False)
                rep, dl = int(rng.random() < P_REPORT), self.delay_days()
                uid = self.uids[v]
                for t in np.sort(t0 + rng.random(int(rng.integers(3, 12))) * dur):
                    card = rng.choice(self.own_cards[v])
                    ipx, m = rng.choice(proxies), rng.choice(ms)
                    amt = np.exp(rng.normal(np.log(600), 0.6))
                    self.add(uid, card, d=phone, ipx=ipx, m=m, a=amt, t=t, fraud=1, rep=rep, dl=dl)

    def card_testing(self, gid, stolen):
        """A farm testing stolen cards with tiny amounts, then cashing a tenth of them out."""
        rng = self.rng
        devs = self.new_dev(int(rng.integers(2, 5)))
        fips = self.new_ips(int(rng.integers(1, 4)))
        accts = self.new_user(int(rng.integers(5, 21)))
        for a in accts:
            self.ring_of[a] = gid
        shops = rng.choice(self.small_m, int(rng.integers(1, 4)), replace=False)
        farm_t = rng.uniform(1, 31) * DAY
        for di, d in enumerate(devs):
            t = farm_t + rng.uniform(0, 1.5) * DAY
            ipd = fips[di % len(fips)]
            ncards = int(rng.integers(20, 61))
            tested = [self.all_own[k] for k in itertools.islice(stolen, ncards)]
            for _, c in tested:
                rep, dl = int(rng.random() < P_REPORT), self.delay_days()
                for _ in range(int(rng.integers(1, 4))):
                    t += rng.uniform(5, 90)
                    a, m, amt = rng.choice(accts), rng.choice(shops), rng.uniform(0.5, 2.0)
                    self.add(a, c, d=d, ipx=ipd, m=m, a=amt, t=t, fraud=1, rep=rep, dl=dl)
                t += rng.uniform(10, 150)
            others = [x for x in devs if x != d]
            for k in rng.choice(ncards, max(1, round(0.1 * ncards)), replace=False):
                c = tested[k][1]
                d2 = others[int(rng.integers(len(others)))]
                t2 = min(t + rng.uniform(2, 5) * DAY, NDAYS * DAY - 60)
                rep, dl = int(rng.random() < P_REPORT), self.delay_days()
                for _ in range(int(rng.integers(1, 4))):
                    m = self.cash_or_any()
                    a, ipx = rng.choice(accts), fips[int(rng.integers(len(fips)))]
                    amt = np.exp(rng.normal(np.log(900), 0.5))
                    self.add(a, c, d=d2, ipx=ipx, m=m, a=amt, t=t2, fraud=1, rep=rep, dl=dl)
                    t2 = min(t2 + rng.uniform(300, 4 * HOUR), NDAYS * DAY - 1)

    def cash_or_any(self):
        rng = self.rng
        return rng.choice(self.cashout) if rng.random() < 0.7 else rng.choice(N_MERCH, p=self.pop)

    def bust_out(self, gid):
        """Synthetic identities that buy small for weeks, then spend big within 48 hours."""
        rng = self.rng
        accts = self.new_user(int(rng.integers(4, 16)))
        devs = self.new_dev(int(rng.integers(1, 3)))
        gips = self.new_ips(int(rng.integers(1, 3)))
        bust = rng.uniform(24, 37.5) * DAY
        for a in accts:
            self.ring_of[a] = gid
            cards = self.new_card(int(rng.integers(1, 3)))
            created = bust - rng.uniform(14, 21) * DAY
            for t in np.sort(rng.uniform(created, bust, int(rng.integers(4, 13)))):
                ipx = rng.choice(gips) if rng.random() < 0.85 else rng.choice(self.carrier)
                card, d, m = rng.choice(cards), rng.choice(devs), rng.choice(N_MERCH, p=self.pop)
                amt = min(np.exp(rng.normal(np.log(25), 0.6)), 150)
                self.add(a, card, d=d, ipx=ipx, m=m, a=amt, t=t, fraud=0)
            rep, dl = int(rng.random() < P_REPORT), self.delay_days()
            for t in np.sort(bust + rng.random(int(rng.integers(2, 7))) * 48 * HOUR):
                m = self.cash_or_any()
                card, d, ipx = rng.choice(cards), rng.choice(devs), rng.choice(gips)
                amt = np.clip(np.exp(rng.normal(np.log(1200), 0.5)), 300, 9000)
                self.add(a, card, d=d, ipx=ipx, m=m, a=amt, t=t, fraud=1, rep=rep, dl=dl)

    def rings(self):
        rng = self.rng
        gids = [f"G{i:02d}" for i in rng.permutation(18) + 1]  # kinds mixed across ids
        established = iter(rng.permutation(np.flatnonzero(self.cnt >= 12)))
        stolen = iter(rng.permutation(len(self.all_own)))
        for gid in gids[:6]:
            self.takeover(gid, established)
        for gid in gids[6:12]:
            self.card_testing(gid, stolen)
        for gid in gids[12:]:
            self.bust_out(gid)


def write(seed: int, out: Path) -> Path:
    """Generate the world of `seed` and write it as CSV to `out`."""
    world = _World(seed)
    world.merchant_mix()
    world.population()
    legit = world.legit()
    world.rings()
    fraud = pd.DataFrame(world.rows, columns=legit.columns)
    df = pd.concat([legit, fraud], ignore_index=True).sort_values("ts", kind="stable")
    df = df.reset_index(drop=True)
    assert df.ts.max() < NDAYS * DAY and df.ts.min() >= 0
    tsd = START + pd.to_timedelta(df.ts.round(), unit="s")
    table = pd.DataFrame(
        {
            "txn_id": ["t" + str(i) for i in range(1, len(df) + 1)],
            "user_id": df.user_id,
            "card_id": df.card_id,
            "device_id": df.device_id,
            "ip": df.ip,
            "merchant_id": df.merchant_id,
            "amount": df.amount.round(2).map("{:.2f}".format),
            "ts": tsd.dt.strftime(FMT),
            "label": np.where(df.fraud == 0, "0", np.where(df.reported == 1, "1", "")),
        }
    )
    lts = (tsd + pd.to_timedelta((df.delay * DAY).round(), unit="s")).dt.strftime(FMT)
    table["label_ts"] = np.where(table.label == "1", lts, "")
    table["ring"] = df.user_id.map(world.ring_of).fillna("")
    table.to_csv(out, index=False)
    return out
