"""A 60-day payments world of mule-chain, merchant-collusion and friendly-fraud rings, written
apart from `world/` from a description of fraud only (`bench rings` scores it held out).

About 12,000 customers at 1,000 merchants of Zipf popularity and 150 neighbourhood shops whose
10-40 regulars come weekly on a preferred day and hour. Households of 1-5 share a home IP, often
a tablet and sometimes a household card; 6% of households share a family card with one or two
others; ten coworking IPs carry 20-60 users each in office hours, 2.5% of users pay through a
pool of 20 VPN IPs and 22% of payments come from 2,500 mobile IPs. Twenty-four rings, eight of
each kind: mule chains of 6-30 accounts (a fifth new, the rest established) recruited over the
first 50 days, each mule on 2-4 devices that pass among at most 3 mules, taking in victims'
cards at 1-3 transfer merchants of the ring's own, often through the VPN pool; collusion rings
of 5-20 established accounts buying at 1-2 fake merchants with stolen cards held by one or two
members, at times from one common IP; friendly-fraud clusters of 3-10 relatives over 2-3 homes
sharing one card, who dispute 1-5 slightly dear purchases each at popular merchants. 70% of
fraud is reported 5-40 days later; the ring column marks every payment of a ring member.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = (
    "user=user_id,card=card_id,device=device_id,ip=ip,merchant=merchant_id,amount=amount,"
    "time=ts,label=label,label_time=label_ts,txn=txn_id,ring=ring"
)

DAYS = 60
T0 = pd.Timestamp("2026-05-01T00:00:00Z")  # a Friday
N_NORMAL_USERS = 11_880  # + friendly-ring and new mule accounts ~= 12,000
N_MERCH, N_SHOPS = 1000, 150
HOUR_P = np.array(
    [
        [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 4, 4.5, 5],  # 00-11h
        [6, 5.5, 5, 5, 5.5, 6, 6.5, 6.5, 6, 5, 3.5, 2],  # 12-23h
    ],
    float,
).ravel()
HOUR_P /= HOUR_P.sum()
OCT1 = np.array([o for o in range(11, 221) if o not in (10, 127, 169, 172, 192)])
ZIPF = 1.0 / np.arange(1, N_MERCH + 1) ** 1.1
ZIPF /= ZIPF.sum()


class _World:
    """One seed's world; every draw comes from `rng` in a fixed order."""

    def __init__(self, seed):
        rng = self.rng = np.random.default_rng(seed)
        self.cnt = {"dev": 0, "card": 0}
        self.ips: list[str] = []
        self.ipset: set[str] = set()
        # Zipf-ranked merchants 0..999, then neighbourhood shops 1000..1149
        self.mprice = list(np.exp(rng.normal(np.log(35), 0.9, N_MERCH)))
        self.mprice += list(np.exp(rng.normal(np.log(14), 0.4, N_SHOPS)))
        self.users: dict[str, list[Any]] = {
            k: [] for k in ["hh", "ip", "phone", "dev2", "card1", "card2", "start", "kind"]
        }
        self.homes: dict[str, list[Any]] = {k: [] for k in ["ip", "tablet", "card", "fam", "famp"]}
        self.rings: dict[str, list[int]] = {}  # ring id -> members
        self.chunks: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- entity factories
    def new1(self, kind):
        self.cnt[kind] += 1
        return self.cnt[kind] - 1

    def new_ip(self):
        rng = self.rng
        while True:
            s = f"{rng.choice(OCT1)}.{rng.integers(0, 256)}.{rng.integers(0, 256)}"
            s += f".{rng.integers(1, 255)}"
            if s not in self.ipset:
                self.ipset.add(s)
                self.ips.append(s)
                return len(self.ips) - 1

    def new_merch(self, median):
        self.mprice.append(float(np.exp(self.rng.normal(np.log(median), 0.3))))
        return len(self.mprice) - 1

    def add_household(self, size, start=0.0, *, kind=0):
        rng, users, homes = self.rng, self.users, self.homes
        h, ip = len(homes["ip"]), self.new_ip()
        homes["ip"].append(ip)
        homes["tablet"].append(
            self.new1("dev") if rng.random() < (0.6 if size > 1 else 0.15) else -1
        )
        homes["card"].append(self.new1("card") if size > 1 and rng.random() < 0.35 else -1)
        homes["fam"].append(-1)
        homes["famp"].append(0.0)
        for _ in range(size):
            users["hh"].append(h)
            users["ip"].append(ip)
            users["phone"].append(self.new1("dev"))
            users["dev2"].append(self.new1("dev") if rng.random() < 0.25 else -1)
            users["card1"].append(self.new1("card"))
            users["card2"].append(self.new1("card") if rng.random() < 0.3 else -1)
            users["start"].append(start)
            users["kind"].append(kind)
        return list(range(len(users["hh"]) - size, len(users["hh"])))

    # ---------------------------------------------------------------- population and rings
    def population(self):
        rng, homes = self.rng, self.homes
        while len(self.users["hh"]) < N_NORMAL_USERS:
            self.add_household(int(rng.choice([1, 2, 3, 4, 5], p=[0.3, 0.3, 0.2, 0.13, 0.07])))
        self.n_normal, n_hh_normal = len(self.users["hh"]), len(homes["ip"])
        # shared family cards, 2-3 households
        fam_hh = rng.permutation(n_hh_normal)[: int(0.06 * n_hh_normal)]
        i = 0
        while i < len(fam_hh) - 1:
            g = min(int(rng.integers(2, 4)), len(fam_hh) - i)
            c = self.new1("card")
            for h in fam_hh[i : i + g]:
                homes["fam"][h], homes["famp"][h] = c, 0.15
            i += g

    def friendly(self):
        """Friendly-fraud clusters: 3-10 relatives over 2-3 homes, one card shared by all."""
        rng, homes = self.rng, self.homes
        for r in range(8):
            name, m = f"F{r + 1:02d}", int(rng.integers(3, 11))
            n_homes = min(int(rng.integers(2, 4)), m)
            sizes = 1 + rng.multinomial(m - n_homes, np.ones(n_homes) / n_homes)
            card, mem = self.new1("card"), []
            for s in sizes:
                mem += self.add_household(int(s), kind=1)
                h = self.users["hh"][mem[-1]]
                homes["fam"][h], homes["famp"][h] = card, 0.3
            self.rings[name] = mem

    def pick(self):
        """An established account, one per household, without a family card."""
        while True:
            u = int(self.perm.pop())
            h = self.users["hh"][u]
            if h not in self.used_h and self.homes["fam"][h] < 0:
                self.used_h.add(h)
                return u

    def mules(self):
        """Mule chains recruited over time, rotating devices (<=3 mules/device, 2-4/mule)."""
        rng = self.rng
        self.perm = list(rng.permutation(self.n_normal))  # established accounts to recruit
        self.used_h: set[int] = set()
        self.mule_plan: list[tuple[Any, ...]] = []
        for r in range(8):
            name, size = f"M{r + 1:02d}", int(rng.integers(6, 31))
            tmerch = [self.new_merch(300) for _ in range(int(rng.integers(1, 4)))]
            devs: list[int] = []
            uses: list[int] = []
            mem: list[int] = []
            for j in np.sort(rng.uniform(0, 50, size)):
                if rng.random() < 0.2:
                    u = self.add_household(1, start=float(j), kind=2)[0]
                else:
                    u = self.pick()
                end = min(DAYS, j + rng.uniform(12, 45))
                mine: list[int] = []
                for _ in range(int(rng.integers(2, 5))):
                    cand = [d for d in range(len(devs)) if uses[d] < 3 and d not in mine]
                    if cand and rng.random() < 0.6:
                        # one of the most recent devices
                        d = cand[-1 - int(rng.integers(0, min(3, len(cand))))]
                    else:
                        devs.append(self.new1("dev"))
                        uses.append(0)
                        d = len(devs) - 1
                    uses[d] += 1
                    mine.append(d)
                victims = [self.new1("card") for _ in range(int(rng.integers(2, 6)))]
                self.mule_plan.append((u, float(j), end, [devs[d] for d in mine], victims, tmerch))
                mem.append(u)
            self.rings[name] = mem

    def collusion(self):
        """Fake merchants, stolen cards shared by 1-2 members, occasionally one common IP."""
        rng = self.rng
        self.coll_plan: list[tuple[Any, ...]] = []
        for r in range(8):
            name, k = f"C{r + 1:02d}", int(rng.integers(5, 21))
            mem = [self.pick() for _ in range(k)]
            fake = [self.new_merch(220) for _ in range(int(rng.integers(1, 3)))]
            cards: dict[int, list[int]] = {u: [] for u in mem}
            order, i = rng.permutation(k), 0
            while i < k:
                g = 2 if (rng.random() < 0.4 and i + 1 < k) else 1
                c = self.new1("card")
                for o in order[i : i + g]:
                    cards[mem[o]].append(c)
                i += g
            for u in mem:
                if rng.random() < 0.2:
                    cards[u].append(self.new1("card"))
            a = rng.uniform(0, 25)
            b = min(DAYS, a + rng.uniform(20, 35))
            sip = self.new_ip() if rng.random() < 0.6 else -1
            self.coll_plan.append((mem, fake, cards, a, b, sip))
            self.rings[name] = mem

    def pools(self):
        """Per-user arrays and the shared IP pools: mobile, VPN, coworking spaces."""
        rng = self.rng
        self.ring_of = {u: name for name, mem in self.rings.items() for u in mem}
        self.ua = {k: np.array(v) for k, v in self.users.items()}
        self.ha = {k: np.array(v) for k, v in self.homes.items()}
        nu = self.nu = len(self.ua["hh"])
        self.mobile = np.array([self.new_ip() for _ in range(2500)])
        self.vpn = np.array([self.new_ip() for _ in range(20)])
        free = np.array([u for u in range(self.n_normal) if u not in self.ring_of])
        self.cowork = np.full(nu, -1)
        sel = rng.permutation(free)
        pos = 0
        for _ in range(10):
            k = int(rng.integers(20, 61))
            self.cowork[sel[pos : pos + k]] = self.new_ip()
            pos += k
        self.vpn_user = np.zeros(nu, bool)
        self.vpn_user[sel[pos : pos + int(0.025 * nu)]] = True

    # ---------------------------------------------------------------- payments
    def times(self, lo, hi):
        rng = self.rng
        n = len(lo)
        day = np.floor(lo + rng.random(n) * (hi - lo))
        sec = day * 86400 + rng.choice(24, n, p=HOUR_P) * 3600 + rng.random(n) * 3600
        # partial first/last day: redraw uniformly in window
        bad = (sec < lo * 86400) | (sec >= hi * 86400)
        sec[bad] = (lo[bad] + rng.random(bad.sum()) * (hi[bad] - lo[bad])) * 86400
        return np.minimum(sec, DAYS * 86400 - 1).astype(np.int64)

    def fill(self, u, sec):
        rng, ua, ha = self.rng, self.ua, self.ha
        n = len(u)
        r = rng.random((7, n))
        hh = ua["hh"][u]
        dev = ua["phone"][u].copy()
        for src, rr, p in ((ua["dev2"][u], r[0], 0.3), (ha["tablet"][hh], r[1], 0.25)):
            m = (src >= 0) & (rr < p)
            dev[m] = src[m]
        card = ua["card1"][u].copy()
        for src, rr, p in (
            (ua["card2"][u], r[2], 0.3),
            (ha["card"][hh], r[3], 0.25),
            (ha["fam"][hh], r[4], ha["famp"][hh]),
        ):
            m = (src >= 0) & (rr < p)
            card[m] = src[m]
        ip = ua["ip"][u].copy()
        m = r[5] < 0.22
        ip[m] = rng.choice(self.mobile, m.sum())
        day, hour = sec // 86400, (sec % 86400) // 3600
        cw = self.cowork[u]
        m = (cw >= 0) & ((day + 4) % 7 < 5) & (hour >= 8) & (hour < 19) & (r[6] < 0.75)
        ip[m] = cw[m]
        m = self.vpn_user[u] & (rng.random(n) < 0.4)
        ip[m] = rng.choice(self.vpn, m.sum())
        return dev, card, ip

    def emit(self, u, sec, *, merch, amt, fraud, dev=None, card=None, ip=None):
        d, c, i = self.fill(u, sec)
        self.chunks.append(
            {
                "u": u,
                "sec": sec,
                "m": merch,
                "amt": amt,
                "fraud": np.full(len(u), fraud),
                "dev": d if dev is None else dev,
                "card": c if card is None else card,
                "ip": i if ip is None else ip,
            }
        )

    def legit(self):
        """Personal favourites + global Zipf, then weekly visits to neighbourhood shops."""
        rng, ua, nu = self.rng, self.ua, self.nu
        n = 1 + rng.poisson(rng.gamma(2.0, 9.0, nu) * (DAYS - ua["start"]) / DAYS)
        u = np.repeat(np.arange(nu), n)
        fav, nfav = rng.choice(N_MERCH, (nu, 6), p=ZIPF), rng.integers(2, 7, nu)
        merch = np.where(
            rng.random(len(u)) < 0.6,
            fav[u, (rng.random(len(u)) * nfav[u]).astype(int)],
            rng.choice(N_MERCH, len(u), p=ZIPF),
        )
        sec = self.times(ua["start"][u], np.full(len(u), float(DAYS)))
        amt = np.array(self.mprice)[merch] * rng.lognormal(0, 0.45, len(u))
        self.emit(u, sec, merch=merch, amt=amt, fraud=False)

        # neighbourhood shops: 10-40 regulars, weekly visits on a preferred weekday/hour
        elig = np.array([x for x in range(nu) if ua["start"][x] == 0])
        us: list[Any] = []
        ss: list[Any] = []
        ms: list[Any] = []
        for s in range(N_MERCH, N_MERCH + N_SHOPS):
            regs = rng.choice(elig, int(rng.integers(10, 41)), replace=False)
            pwd = rng.integers(0, 7, len(regs))
            ph = rng.integers(8, 20, len(regs))
            for w in range(9):
                day = w * 7 + (pwd - 4) % 7 + rng.choice([-1, 0, 0, 0, 1], len(regs))
                ok = (rng.random(len(regs)) < 0.8) & (day >= 0) & (day < DAYS)
                us.append(regs[ok])
                ms.append(np.full(ok.sum(), s))
                sec = day[ok] * 86400 + ph[ok] * 3600 + rng.integers(0, 3600, ok.sum())
                ss.append(sec.astype(np.int64))
        u, merch = np.concatenate(us), np.concatenate(ms)
        amt = np.array(self.mprice)[merch] * rng.lognormal(0, 0.35, len(u))
        self.emit(u, np.concatenate(ss), merch=merch, amt=amt, fraud=False)

    def fraud(self):
        rng, mprice = self.rng, self.mprice
        # mule receipts at ring-exclusive transfer merchants, rotating devices, shared VPN pool
        for mu, j, end, devs, victims, tm in self.mule_plan:
            k = max(int(rng.integers(3, 13)), len(devs))
            sec = np.sort(self.times(np.full(k, j), np.full(k, end)))
            # rotate, all used
            extra = rng.integers(0, len(devs), k - len(devs))
            seg = np.sort(np.concatenate([np.arange(len(devs)), extra]))
            ip = np.where(rng.random(k) < 0.6, rng.choice(self.vpn, k), self.ua["ip"][mu])
            merch = rng.choice(tm, k)
            amt = np.array(mprice)[merch] * rng.lognormal(0, 0.6, k)
            dev, card = np.array(devs)[seg], rng.choice(victims, k)
            self.emit(
                np.full(k, mu), sec, merch=merch, amt=amt, fraud=True, dev=dev, card=card, ip=ip
            )
        # collusion purchases at fake merchants with stolen cards
        for mem, fake, cards, a, b, sip in self.coll_plan:
            for mu in mem:
                k = int(rng.integers(3, 13))
                uu = np.full(k, mu)
                sec = self.times(np.full(k, a), np.full(k, b))
                _, _, ip = self.fill(uu, sec)
                if sip >= 0:
                    ip = np.where(rng.random(k) < 0.15, sip, ip)
                merch = rng.choice(fake, k)
                amt = np.array(mprice)[merch] * rng.lognormal(0, 0.5, k)
                card = rng.choice(cards[mu], k)
                self.emit(uu, sec, merch=merch, amt=amt, fraud=True, card=card, ip=ip)
        # friendly chargebacks on ordinary-looking, slightly larger purchases at popular merchants
        for name in [r for r in self.rings if r[0] == "F"]:
            for mu in self.rings[name]:
                k = int(rng.integers(1, 6))
                merch = rng.choice(40, k)
                sec = self.times(np.zeros(k), np.full(k, float(DAYS)))
                amt = np.array(mprice)[merch] * rng.lognormal(0, 0.45, k) * rng.uniform(1.2, 1.8, k)
                self.emit(np.full(k, mu), sec, merch=merch, amt=amt, fraud=True)

    # ---------------------------------------------------------------- assemble
    def frame(self):
        rng = self.rng
        cols = {k: np.concatenate([c[k] for c in self.chunks]) for k in self.chunks[0]}
        o = np.argsort(cols["sec"], kind="stable")
        cols = {k: v[o] for k, v in cols.items()}
        n = len(o)
        rep = cols["fraud"] & (rng.random(n) < 0.7)
        delay = np.minimum(5 + np.exp(rng.normal(np.log(7), 0.6, n)), 40) * 86400

        def ids(prefix, k, *, lo, hi):
            return np.char.add(prefix, rng.choice(np.arange(lo, hi), k, replace=False).astype(str))

        def iso(sec):
            return (T0 + pd.to_timedelta(sec, unit="s")).strftime("%Y-%m-%dT%H:%M:%SZ")

        ring_arr = np.array([self.ring_of.get(x, "") for x in range(self.nu)], dtype=object)
        return pd.DataFrame(
            {
                "txn_id": np.char.add("t", np.arange(1, n + 1).astype(str)),
                "user_id": ids("u", self.nu, lo=10_000, hi=100_000)[cols["u"]],
                "card_id": ids("c", self.cnt["card"], lo=100_000, hi=1_000_000)[cols["card"]],
                "device_id": ids("d", self.cnt["dev"], lo=100_000, hi=1_000_000)[cols["dev"]],
                "ip": np.array(self.ips, dtype=object)[cols["ip"]],
                "merchant_id": ids("m", len(self.mprice), lo=1000, hi=10_000)[cols["m"]],
                "amount": np.round(np.clip(cols["amt"], 1.0, 9999.99), 2),
                "ts": iso(cols["sec"]),
                "label": np.where(cols["fraud"], np.where(rep, "1", ""), "0"),
                "label_ts": np.where(rep, iso(cols["sec"] + delay.astype(np.int64)), ""),
                "ring": ring_arr[cols["u"]],
            }
        )


def write(seed: int, out: Path) -> Path:
    """Generate the world of `seed` and write it as CSV to `out`."""
    world = _World(seed)
    world.population()
    world.friendly()
    world.mules()
    world.collusion()
    world.pools()
    world.legit()
    world.fraud()
    world.frame().to_csv(out, index=False, float_format="%.2f")
    return out
