"""The legitimate population: users in households, their phones, cards and IPs, and merchants.

Everything here is an index array (millions of ints fit in memory); only transactions stream.
Entity indices become string ids through a random permutation, so an id never tells when or
why its entity was created (ring entities are not at the end of the id space).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: Merchant categories: (name, share of merchants, ln median amount, sigma, often in store).
CATEGORIES: tuple[tuple[str, float, float, float, bool], ...] = (
    ("grocery", 0.20, np.log(38.0), 0.65, True),
    ("restaurant", 0.18, np.log(27.0), 0.55, True),
    ("fuel", 0.07, np.log(48.0), 0.40, True),
    ("pharmacy", 0.05, np.log(22.0), 0.70, True),
    ("fashion", 0.12, np.log(65.0), 0.80, False),
    ("online_retail", 0.14, np.log(45.0), 1.00, False),
    ("digital_goods", 0.09, np.log(12.0), 0.90, False),
    ("electronics", 0.07, np.log(160.0), 0.95, False),
    ("travel", 0.04, np.log(280.0), 0.90, False),
    ("utilities", 0.04, np.log(85.0), 0.50, False),
)
CATEGORY_NAMES = [c[0] for c in CATEGORIES]
CAT_SHARE = np.array([c[1] for c in CATEGORIES])
#: Share of all payments per category (grocery, restaurant, ..., utilities), stable across seeds.
CAT_TRAFFIC = np.array([0.22, 0.18, 0.08, 0.05, 0.08, 0.17, 0.10, 0.04, 0.03, 0.05])
CAT_MU = np.array([c[2] for c in CATEGORIES])
CAT_SIGMA = np.array([c[3] for c in CATEGORIES])
CAT_IN_STORE = np.array([c[4] for c in CATEGORIES])
CAT = {name: i for i, name in enumerate(CATEGORY_NAMES)}

#: Share of a day's transactions in each UTC hour: quiet nights, lunch and evening peaks.
HOUR_WEIGHTS = np.array(
    [
        1.2,
        0.7,
        0.45,
        0.35,
        0.35,
        0.55,
        1.3,
        2.6,
        3.8,
        4.6,
        5.2,
        5.8,
        6.6,
        6.3,
        5.6,
        5.4,
        5.7,
        6.4,
        7.0,
        6.9,
        6.1,
        4.9,
        3.4,
        2.1,
    ]
)
HOUR_CDF = np.cumsum(HOUR_WEIGHTS) / HOUR_WEIGHTS.sum()
#: Monday .. Sunday volume factors.
WEEKDAY_WEIGHTS = np.array([0.94, 0.95, 0.98, 1.0, 1.1, 1.12, 0.91])

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR
#: Mean transactions per user per day; sets how many users a world of N transactions has.
MEAN_DAILY_RATE = 0.6


@dataclass
class Entities:
    """Counters of allocated entity indices per kind (ids are dense 0..n-1)."""

    devices: int = 0
    cards: int = 0
    ips: int = 0
    merchants: int = 0

    def new(self, kind: str, n: int) -> np.ndarray:
        start = int(getattr(self, kind))
        setattr(self, kind, start + n)
        return np.arange(start, start + n, dtype=np.int64)


@dataclass
class Population:
    """Per-user arrays (index = user) and per-merchant arrays (index = merchant)."""

    rate: np.ndarray  # relative activity
    created_day: np.ndarray  # first active day (0 = existed before the period)
    end_day: np.ndarray  # last active day
    phone: np.ndarray  # personal device
    shared_device: np.ndarray  # household (or ring) device, -1 none
    home_ip: np.ndarray
    carrier_ip: np.ndarray  # carrier NAT hub, shared by hundreds
    office_ip: np.ndarray  # office / campus network shared by about a dozen colleagues, -1 none
    card1: np.ndarray
    card2: np.ndarray  # -1 none
    fav: np.ndarray  # (users, 3) favourite merchants
    member: np.ndarray  # account belongs to a planted ring (incl. taken-over accounts)
    activity_ring: np.ndarray  # ring whose account this is (all its activity is ring activity)
    merchant_cat: np.ndarray
    merchant_factor: np.ndarray  # merchant price level
    merchant_cdf: np.ndarray  # popularity, cumulative
    wifi_ips: np.ndarray  # public wifi hub IPs (travel, cafes)
    entities: Entities

    @property
    def n_users(self) -> int:
        return int(self.rate.shape[0])

    def extend(self, other: dict[str, np.ndarray]) -> np.ndarray:
        """Append users (ring accounts); returns their indices."""
        start = self.n_users
        for name, values in other.items():
            setattr(self, name, np.concatenate([getattr(self, name), values]))
        return np.arange(start, self.n_users, dtype=np.int64)


def user_count(transactions: int, days: int) -> int:
    return max(200, round(transactions / (days * MEAN_DAILY_RATE)))


def draw_rates(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.gamma(shape=0.9, scale=1 / 0.9, size=n)


def build_population(rng: np.random.Generator, *, n_users: int, days: int) -> Population:
    ent = Entities()
    # Households of 1-4 users share a home IP; most multi-user households share a device.
    sizes = rng.choice([1, 2, 3, 4], size=n_users, p=[0.55, 0.25, 0.13, 0.07])
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n_users)) + 1]
    household = np.repeat(np.arange(sizes.shape[0]), sizes)[:n_users]
    first_of_household = np.r_[True, household[1:] != household[:-1]]
    hh_ip = ent.new("ips", sizes.shape[0])
    hh_dev = np.full(sizes.shape[0], -1, dtype=np.int64)
    shares = (sizes >= 2) & (rng.random(sizes.shape[0]) < 0.7)
    hh_dev[shares] = ent.new("devices", int(shares.sum()))
    phone = ent.new("devices", n_users)
    card1 = ent.new("cards", n_users)
    card2 = np.full(n_users, -1, dtype=np.int64)
    own2 = rng.random(n_users) < 0.25
    card2[own2] = ent.new("cards", int(own2.sum()))
    # Joint cards: a household member also uses the card of the household's first member.
    head = np.maximum.accumulate(np.where(first_of_household, np.arange(n_users), 0))
    joint = ~first_of_household & (rng.random(n_users) < 0.3)
    card2[joint] = card1[head[joint]]
    # Carrier NAT: a few hub IPs, each shared by hundreds of unrelated users.
    n_carrier = max(2, n_users // 300)
    carrier = ent.new("ips", n_carrier)
    carrier_w = rng.lognormal(0.0, 0.6, n_carrier)
    carrier_ip = carrier[
        np.searchsorted(np.cumsum(carrier_w) / carrier_w.sum(), rng.random(n_users))
    ]
    wifi = ent.new("ips", max(3, n_users // 1000))
    # Offices and campuses: legitimate mid-size sharing (about 5-20 unrelated users per IP).
    has_office = rng.random(n_users) < 0.10
    n_offices = max(1, int(has_office.sum()) // 12)
    office_ip = np.full(n_users, -1, dtype=np.int64)
    office_ip[has_office] = ent.new("ips", n_offices)[
        rng.integers(0, n_offices, int(has_office.sum()))
    ]
    created = np.where(rng.random(n_users) < 0.08, rng.integers(1, max(2, days), n_users), 0)

    n_merchants = max(40, n_users // 40)
    ent.new("merchants", n_merchants)
    # Every category has merchants, the rest by share.
    merchant_cat = np.r_[
        np.arange(len(CATEGORIES)),
        rng.choice(
            len(CATEGORIES), size=n_merchants - len(CATEGORIES), p=CAT_SHARE / CAT_SHARE.sum()
        ),
    ]
    # Merchant sizes are heavy-tailed within a category; categories keep their traffic share.
    size = rng.pareto(1.3, n_merchants) + 0.05
    in_cat = np.bincount(merchant_cat, weights=size, minlength=len(CATEGORIES))
    popularity = CAT_TRAFFIC[merchant_cat] * size / in_cat[merchant_cat]
    cdf = np.cumsum(popularity) / popularity.sum()
    fav = np.searchsorted(cdf, rng.random((n_users, 3)))
    return Population(
        rate=draw_rates(rng, n_users),
        created_day=created.astype(np.int32),
        end_day=np.full(n_users, days - 1, dtype=np.int32),
        phone=phone,
        shared_device=hh_dev[household],
        home_ip=hh_ip[household],
        carrier_ip=carrier_ip,
        office_ip=office_ip,
        card1=card1,
        card2=card2,
        fav=fav.astype(np.int64),
        member=np.zeros(n_users, dtype=bool),
        activity_ring=np.full(n_users, -1, dtype=np.int32),
        merchant_cat=merchant_cat.astype(np.int8),
        merchant_factor=rng.lognormal(0.0, 0.25, n_merchants),
        merchant_cdf=cdf,
        wifi_ips=wifi,
        entities=ent,
    )


def add_merchants(pop: Population, *, cats: np.ndarray, weight: float) -> np.ndarray:
    """New small merchants (e.g. colluding ones); `weight` is relative to an average merchant."""
    idx = pop.entities.new("merchants", cats.shape[0])
    pdf = np.diff(np.r_[0.0, pop.merchant_cdf])
    pdf = np.r_[pdf, np.full(cats.shape[0], weight / pdf.shape[0])]
    pop.merchant_cdf = np.cumsum(pdf) / pdf.sum()
    pop.merchant_cat = np.r_[pop.merchant_cat, cats.astype(np.int8)]
    pop.merchant_factor = np.r_[pop.merchant_factor, np.ones(cats.shape[0])]
    return idx


def draw_amounts(rng: np.random.Generator, pop: Population, merchants: np.ndarray) -> np.ndarray:
    """Heavy-tailed (log-normal) amounts by merchant category and price level, rounded to cents."""
    cat = pop.merchant_cat[merchants]
    raw = np.exp(CAT_MU[cat] + CAT_SIGMA[cat] * rng.standard_normal(merchants.shape[0]))
    out: np.ndarray = np.maximum(np.round(raw * pop.merchant_factor[merchants], 2), 0.5)
    return out


def draw_times(rng: np.random.Generator, n: int) -> np.ndarray:
    """Microseconds into the day, following the daily rhythm."""
    hour = np.searchsorted(HOUR_CDF, rng.random(n))
    return hour * US_PER_HOUR + (rng.random(n) * US_PER_HOUR).astype(np.int64)


def id_strings(rng: np.random.Generator, prefix: str, n: int) -> pa.Array:
    """Opaque ids: a random permutation, so the id says nothing about its entity."""
    width = max(6, len(str(max(n - 1, 1))))
    perm = rng.permutation(n)
    return pa.array([f"{prefix}{i:0{width}d}" for i in perm.tolist()], type=pa.string())


def ip_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """Distinct public-looking IPv4 addresses."""
    seen = np.unique(rng.integers(0x0B000000, 0xDF000000, size=int(n * 1.1) + 16))
    vals = rng.permutation(seen)[:n]
    while vals.shape[0] < n:  # pragma: no cover - vanishingly rare
        vals = np.unique(np.r_[vals, rng.integers(0x0B000000, 0xDF000000, size=n)])[:n]
    octets = [(v >> 24 & 255, v >> 16 & 255, v >> 8 & 255, v & 255) for v in vals.tolist()]
    return pa.array([f"{a}.{b}.{c}.{d}" for a, b, c, d in octets], type=pa.string())
