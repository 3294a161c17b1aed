"""Planted fraud rings: who is in them, what they share, and their fraudulent transactions.

The signal a ring leaves is shared entities: members use a few devices, IPs, cards or merchants
among themselves. In the hard setting each fraudulent transaction is drawn like an ordinary one
(merchant by popularity, amount from its category, hour from the daily rhythm, spread over
days), and the ring keeps under per-entity velocity limits as organised rings do: every device,
IP or card it shares is used by no more accounts than a household's (`HOUSEHOLD`), and the ring
holds together as a chain of such groups (`chain`). So no per-transaction feature, distinct
users of a device in 7 days included, gives members away; only the multi-hop structure does.
In the easy setting a few entities serve the whole ring and fraud is also visible per
transaction (night bursts, tiny test charges, large amounts).

Ring membership: synthetic-identity, card-testing and mule rings open their own accounts (every
transaction of those accounts carries the ring id); an account-takeover ring's members are the
taken-over accounts, and only the takeover transactions carry the ring id.
"""

from __future__ import annotations

import numpy as np

from world.planted import Planted, Ring
from world.population import (
    CAT,
    CAT_IN_STORE,
    CAT_MU,
    CAT_SHARE,
    CAT_SIGMA,
    HOUR_CDF,
    US_PER_DAY,
    US_PER_HOUR,
    Population,
    add_merchants,
    draw_rates,
)
from world.topology import SHAPES, plant
from world.topology import TYPOLOGY_OF as TOPOLOGY_TYPOLOGY

TYPOLOGIES = ("synthetic_identity", "card_testing", "ato", "mule")
#: Accounts per shared entity of a hard ring, as many as a household shares a device with.
HOUSEHOLD = 2
#: Accounts a takeover crew works from one device or IP (the last crew of a chain takes the
#: remainder: five to nine), more than a household, so that the ring's core (`graph.ringrule.core`)
#: can tell the victims from their families hanging on: takeovers are the one typology whose
#: devices a one-hop count can notice.
CREW = 5
#: Rough fraudulent transactions per member, to size rings from the fraud budget.
FRAUD_PER_MEMBER = {"synthetic_identity": 3.5, "card_testing": 4.5, "ato": 2.5, "mule": 4.0}


def chain(k: int, group: int = HOUSEHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Entity indices (primary, secondary) for k members: member j uses entities j // group and
    (j + 1) // group (the last group takes the remainder), so each entity has a few users and
    the groups link in a chain of `n_chain` entities."""
    j = np.arange(k)
    last = n_chain(k, group) - 1
    return np.minimum(j // group, last), np.minimum((j + 1) // group, last)


def n_chain(k: int, group: int = HOUSEHOLD) -> int:
    """Entities a chain of k members uses: k // group, at least one."""
    return max(1, k // group)


class Planner:
    """Plans rings until the fraud budget is spent; new ring accounts are appended at the end."""

    def __init__(
        self,
        rng: np.random.Generator,
        pop: Population,
        *,
        days: int,
        difficulty: str,
        topology: str = "dense",
    ) -> None:
        self.rng, self.pop, self.days, self.easy = rng, pop, days, difficulty == "easy"
        self.topology = topology
        self.rings: list[Ring] = []
        self.planted = Planted()
        self.new_users: list[dict[str, np.ndarray]] = []
        self.n_new = 0
        self.base = pop.n_users
        self.taken = np.zeros(pop.n_users, dtype=bool)  # takeover victims, never twice

    # -- helpers -------------------------------------------------------------------------
    def _ts(self, day: int, *, night: bool = False, anchor: int | None = None) -> int:
        rng = self.rng
        day = int(min(max(day, 0), self.days - 1))
        if anchor is not None:  # a burst: minutes after the anchor
            return min(anchor + int(rng.integers(20, 900)) * 1_000_000, self.days * US_PER_DAY - 1)
        if night:
            return day * US_PER_DAY + int(rng.integers(1 * US_PER_HOUR, 5 * US_PER_HOUR))
        hour = int(np.searchsorted(HOUR_CDF, rng.random()))
        return day * US_PER_DAY + hour * US_PER_HOUR + int(rng.integers(0, US_PER_HOUR))

    def _merchant(self) -> int:
        return int(np.searchsorted(self.pop.merchant_cdf, self.rng.random()))

    def _merchant_of(self, cats: list[str]) -> int:
        want = np.isin(self.pop.merchant_cat, [CAT[c] for c in cats]).nonzero()[0]
        return int(want[self.rng.integers(0, want.shape[0])])

    def _amount(self, merchant: int, scale: float = 1.0) -> float:
        cat = self.pop.merchant_cat[merchant]
        raw = np.exp(CAT_MU[cat] + CAT_SIGMA[cat] * self.rng.standard_normal())
        return float(max(round(raw * self.pop.merchant_factor[merchant] * scale, 2), 0.5))

    def _add(
        self,
        *,
        ts: int,
        user: int,
        card: int,
        device: int,
        ip: int,
        merchant: int,
        amount: float,
        ring: int,
        online: bool = False,
    ) -> None:
        typ = self.rings[ring].typology
        # Hard: physical-card fraud is paid in store as often as ordinary payments are (no device,
        # no IP); takeovers and card tests are online by nature.
        physical = typ in ("synthetic_identity", "mule")
        in_store = CAT_IN_STORE[self.pop.merchant_cat[merchant]] and self.rng.random() < 0.6
        if not self.easy and physical and in_store and not online:
            device = ip = -1
        p = self.planted
        p.ts.append(ts)
        p.user.append(user)
        p.card.append(card)
        p.device.append(device)
        p.ip.append(ip)
        p.merchant.append(merchant)
        p.amount.append(amount)
        p.ring.append(ring)
        self.rings[ring].fraud_txns += 1

    def _accounts(self, k: int, ring: int, *, created_max: int) -> np.ndarray:
        """k new ring accounts with ordinary activity rates; devices/IPs/cards set by caller."""
        ent, rng = self.pop.entities, self.rng
        users = np.arange(self.base + self.n_new, self.base + self.n_new + k, dtype=np.int64)
        self.n_new += k
        self.new_users.append(
            {
                "rate": draw_rates(rng, k),
                "created_day": rng.integers(0, max(1, created_max) + 1, k).astype(np.int32),
                "end_day": np.full(k, self.days - 1, dtype=np.int32),
                "phone": ent.new("devices", k),
                "shared_device": np.full(k, -1, dtype=np.int64),
                "home_ip": ent.new("ips", k),
                "carrier_ip": self.pop.carrier_ip[rng.integers(0, self.base, k)],
                "office_ip": np.full(k, -1, dtype=np.int64),
                "card1": ent.new("cards", k),
                "card2": np.full(k, -1, dtype=np.int64),
                "fav": np.searchsorted(self.pop.merchant_cdf, rng.random((k, 3))).astype(np.int64),
                "member": np.ones(k, dtype=bool),
                "activity_ring": np.full(k, ring, dtype=np.int32),
            }
        )
        return users

    def take_over(self, k: int) -> np.ndarray:
        """Up to k established, active accounts not taken over before (marked ring members)."""
        pop = self.pop
        rate = pop.rate[: self.base]
        free = np.flatnonzero(
            ~self.taken & (pop.created_day[: self.base] == 0) & (rate > np.median(rate))
        )
        victims = self.rng.choice(free, size=min(k, free.shape[0]), replace=False)
        self.taken[victims] = True
        pop.member[victims] = True
        return victims

    def pending(self, name: str, user: int) -> int:
        """Attribute `name` of a new ring account not yet appended to the population."""
        at = user - self.base
        for block in self.new_users:
            if at < block[name].shape[0]:
                return int(block[name][at])
            at -= block[name].shape[0]
        raise IndexError(user)

    def _set(self, users: np.ndarray, name: str, values: np.ndarray) -> None:
        block = self.new_users[-1]
        block[name][users - users[0]] = values

    # -- typologies ----------------------------------------------------------------------
    def synthetic_identity(self, r: int, k: int) -> None:
        """New accounts opened from a few devices/IPs, sharing cards; history, then bust-out."""
        rng, ent, ring, d = self.rng, self.pop.entities, self.rings[r], self.days
        users = self._accounts(k, r, created_max=int(d * 0.4))
        i = np.arange(k)
        if self.easy:
            devs = ent.new("devices", max(1, round(k / 6)))
            ips, cards = (
                ent.new("ips", max(1, round(k / 8))),
                ent.new("cards", max(1, round(k / 3))),
            )
            phone, shared = devs[i % devs.shape[0]], rng.choice(devs, k)
            home, card2 = ips[rng.integers(0, ips.shape[0], k)], cards[i % cards.shape[0]]
        else:  # household-sized groups in a chain: phones, tablets, IPs and cards
            first, second = chain(k)
            devs, ips, cards = (ent.new(n, n_chain(k)) for n in ("devices", "ips", "cards"))
            phone, shared, home, card2 = devs[first], devs[second], ips[second], cards[second]
        self._set(users, "phone", phone)
        # easy: half the members also use a ring tablet; hard: all do (it chains the pairs)
        self._set(
            users,
            "shared_device",
            np.where(rng.random(k) < 0.5, shared, -1) if self.easy else shared,
        )
        self._set(users, "home_ip", home)
        self._set(users, "card2", card2)
        if not self.easy:  # and each card in three hands: the pair's, and the next pair's first
            self._set(users, "card1", cards[first])
        block = self.new_users[-1]
        bust = int(rng.integers(min(d - 1, int(block["created_day"].max()) + max(1, d // 4)), d))
        block["end_day"][:] = min(d - 1, bust + 2)
        ring.devices, ring.ips, ring.cards = devs.tolist(), ips.tolist(), cards.tolist()
        for j, u in enumerate(users.tolist()):
            anchor = self._ts(bust, night=True) if self.easy else None
            for n_txn in range(int(rng.integers(2, 6))):
                m = self._merchant_of(["electronics", "travel"]) if self.easy else self._merchant()
                card = int(block["card2"][j]) if rng.random() < 0.6 else int(block["card1"][j])
                self._add(
                    ts=self._ts(bust + int(rng.integers(0, 3)), anchor=anchor),
                    user=u,
                    card=card,
                    # hard: the pair's phone and the next pair's tablet in turn (the chain)
                    device=int(
                        block["phone" if self.easy or n_txn % 2 == 0 else "shared_device"][j]
                    ),
                    ip=int(block["home_ip"][j]),
                    merchant=m,
                    amount=self._amount(m, 4.0 if self.easy else 1.0),
                    ring=r,
                    online=n_txn == 0,  # at least one purchase from the ring's devices
                )

    def card_testing(self, r: int, k: int) -> None:
        """Many small charges over many stolen cards from a few devices, then large ones."""
        rng, ent, ring, d = self.rng, self.pop.entities, self.rings[r], self.days
        users = self._accounts(k, r, created_max=int(d * 0.5))
        if self.easy:
            devs, ips = ent.new("devices", 1 + int(k > 10)), ent.new("ips", 1 + int(k > 15))
            dev_of, ip_of = np.arange(k) % devs.shape[0], np.arange(k) % ips.shape[0]
            shared = devs[rng.integers(0, devs.shape[0], k)]
        else:  # each device and IP within a household's reach, chained
            first, second = chain(k)
            devs, ips = ent.new("devices", n_chain(k)), ent.new("ips", n_chain(k))
            dev_of, ip_of, shared = first, second, devs[second]
        self._set(users, "phone", devs[dev_of])
        self._set(users, "shared_device", shared)
        self._set(users, "home_ip", ips[ip_of])
        stolen = self.pop.card1[
            rng.choice(self.base, size=min(self.base // 2, round(k * 2.5)), replace=False)
        ]
        cats = ["digital_goods"] if self.easy else None
        shops = [self._merchant_of(cats) if cats else self._merchant() for _ in range(2 + k // 10)]
        start = int(rng.integers(0, max(1, d - 3)))
        ring.devices, ring.ips, ring.cards, ring.merchants = (
            devs.tolist(),
            ips.tolist(),
            stolen.tolist(),
            shops,
        )
        anchor = self._ts(start, night=True) if self.easy else None
        for j, card in enumerate(stolen.tolist()):
            u = int(users[j % k])
            dev, ip = int(devs[dev_of[j % k]]), int(ips[ip_of[j % k]])
            if not self.easy and (j // k) % 2:  # every other card from the second device
                dev = int(shared[j % k])
            for _ in range(int(rng.integers(1, 3))):
                m = shops[int(rng.integers(0, len(shops)))]
                amt = round(float(rng.uniform(0.5, 3.0)), 2) if self.easy else self._amount(m)
                ts = self._ts(start + int(rng.integers(0, 3)), anchor=anchor)
                self._add(
                    ts=ts, user=u, card=card, device=dev, ip=ip, merchant=m, amount=amt, ring=r
                )
            if rng.random() < 0.45:  # the card passed: cash it out
                m = self._merchant_of(["electronics"]) if self.easy else self._merchant()
                amt = round(float(rng.uniform(400, 2500)), 2) if self.easy else self._amount(m)
                ts = self._ts(start + 3 + int(rng.integers(0, 2)), night=self.easy)
                self._add(
                    ts=ts, user=u, card=card, device=dev, ip=ip, merchant=m, amount=amt, ring=r
                )

    def ato(self, r: int, k: int) -> None:
        """Established accounts suddenly used from the ring's devices and IPs."""
        rng, ent, ring, d, pop = self.rng, self.pop.entities, self.rings[r], self.days, self.pop
        # Established, active accounts: worth taking over, with a history of their own.
        victims = self.take_over(k)
        n = victims.shape[0]
        if self.easy:
            devs = ent.new("devices", 1 + int(k > 8) + int(k > 20))
            ips = ent.new("ips", 1 + int(k > 12))
            dev_of = np.arange(n) % devs.shape[0]
            ip_of = np.asarray(rng.integers(0, ips.shape[0], n))
        else:  # each ring device and IP serves a crew's worth of accounts (`CREW`); a victim
            # is used from two devices in turn, which chains the crews into one ring
            first, second = chain(n, CREW)
            devs, ips = ent.new("devices", n_chain(n, CREW)), ent.new("ips", n_chain(n, CREW))
            dev_of, ip_of = first, first
        ring.members, ring.devices, ring.ips = victims.tolist(), devs.tolist(), ips.tolist()
        for j, u in enumerate(victims.tolist()):
            day = int(rng.integers(int(d * 0.3), d))
            anchor = self._ts(day, night=True) if self.easy else None
            dev, ip = int(devs[dev_of[j]]), int(ips[ip_of[j]])
            for i in range(int(rng.integers(1, 5)) if self.easy else int(rng.integers(2, 5))):
                if not self.easy:
                    dev = int(devs[(first if i % 2 == 0 else second)[j]])
                m = self._merchant_of(["electronics", "travel"]) if self.easy else self._merchant()
                card = int(pop.card1[u])
                ts = self._ts(day + int(rng.integers(0, 3)), anchor=anchor)
                amt = self._amount(m, 5.0 if self.easy else 1.0)
                self._add(
                    ts=ts, user=u, card=card, device=dev, ip=ip, merchant=m, amount=amt, ring=r
                )

    def mule(self, r: int, k: int) -> None:
        """Accounts cycling money through a few colluding merchants."""
        rng, ent, ring, d = self.rng, self.pop.entities, self.rings[r], self.days
        users = self._accounts(k, r, created_max=int(d * 0.5))
        if self.easy:
            ips = ent.new("ips", max(1, round(k / 6)))
            self._set(users, "home_ip", ips[rng.integers(0, ips.shape[0], k)])
        else:  # pairs on a phone and an IP, chained by using the next pair's phone in turn
            first, second = chain(k)
            ips, devs = ent.new("ips", n_chain(k)), ent.new("devices", n_chain(k))
            self._set(users, "home_ip", ips[second])
            self._set(users, "phone", devs[first])
            ring.devices = devs.tolist()
        n_shops = 1 + int(k > 8) + int(k > 20)
        if self.easy:
            cats = np.full(n_shops, CAT["online_retail"])
        else:  # shell merchants of any category, as ordinary merchants are
            cats = rng.choice(CAT_SHARE.shape[0], size=n_shops, p=CAT_SHARE / CAT_SHARE.sum())
        shops = add_merchants(self.pop, cats=cats, weight=0.005)
        ring.ips, ring.merchants = ips.tolist(), shops.tolist()
        block = self.new_users[-1]
        for j, u in enumerate(users.tolist()):
            day0 = int(block["created_day"][j])
            for i in range(int(rng.integers(2, 7))):
                m = int(shops[int(rng.integers(0, shops.shape[0]))])
                amt = float(rng.integers(2, 20) * 100) if self.easy else self._amount(m)
                ts = self._ts(int(rng.integers(day0, d)), night=self.easy and rng.random() < 0.5)
                dev = int(block["phone"][j]) if self.easy or i % 2 == 0 else int(devs[second[j]])
                self._add(
                    ts=ts,
                    user=u,
                    card=int(block["card1"][j]),
                    device=dev,
                    ip=int(block["home_ip"][j]),
                    merchant=m,
                    amount=amt,
                    ring=r,
                )

    # -- driver --------------------------------------------------------------------------
    def _shape(self) -> str | None:
        """The topology of the next ring (None: the dense planner of each typology)."""
        if self.topology == "dense":
            return None
        if self.topology == "mix":
            return SHAPES[int(self.rng.integers(0, len(SHAPES)))]
        return self.topology

    def plan(self, budget: int) -> None:
        rng = self.rng
        order: list[int] = []
        while len(self.planted) < budget:
            if not order:  # rounds of every typology in a random order: balanced counts
                order = [int(i) for i in rng.permutation(len(TYPOLOGIES))]
            t = order.pop(0)
            shape = self._shape()
            typ = TOPOLOGY_TYPOLOGY[shape] if shape else TYPOLOGIES[t]
            # Mostly 3-30 members; in small worlds no ring takes more than a quarter of the fraud.
            cap = min(30, max(3, round(budget / (4 * FRAUD_PER_MEMBER[typ]))))
            size = int(np.clip(round(rng.lognormal(np.log(8.0), 0.6)), 3, cap))
            room = (budget - len(self.planted)) / FRAUD_PER_MEMBER[typ]
            size = max(3, min(size, round(room)))
            r = len(self.rings)
            self.rings.append(
                Ring(ring_id=f"ring-{r:05d}", typology=typ, members=[], topology=shape or "dense")
            )
            if shape:
                plant(self, r, size, shape)
                continue
            getattr(self, typ)(r, size)
            if typ != "ato":
                self.rings[r].members = list(
                    range(self.base + self.n_new - size, self.base + self.n_new)
                )
        if self.new_users:
            names = self.new_users[0].keys()
            self.pop.extend({n: np.concatenate([b[n] for b in self.new_users]) for n in names})
