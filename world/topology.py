"""Ring topologies other than the default one, and the legitimate groups that look like them.

A detector tuned to one way of sharing learns that simulator, not fraud. `generate(topology=...)`
plants rings of one shape (or a mix), and always adds every legitimate look-alike to the
population, so that each shape has an innocent twin a detector must leave alone:

- chain (relay: each device, IP or card shared by 2-3 consecutive members, never ring-wide):
  extended families chained by pairs (a device per pair, a card across pairs);
- star (one controller device or IP, members otherwise apart): dorms (one IP, many students)
  and office PCs;
- bipartite (card testing: many stolen cards, a few devices): family cards used by relatives
  who live apart;
- mule (nothing shared but one to three shell merchants): a small shop's regulars.

Chain and star rings mix new accounts with taken-over established ones (whose households come
along in the graph). `dense` is the historical planner (`world.rings.Planner`), unchanged.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from world.planted import Ring
from world.population import CAT_SHARE, Population, add_merchants

TOPOLOGIES = ("dense", "chain", "star", "bipartite", "mule", "mix")
SHAPES = ("chain", "star", "bipartite", "mule")
#: The typology a shape's rings are written under in truth.parquet.
TYPOLOGY_OF = {
    "chain": "synthetic_identity",
    "star": "ato",
    "bipartite": "card_testing",
    "mule": "mule",
}
#: Share of taken-over established accounts among chain and star ring members.
TAKEN_OVER = 0.3


class Planner(Protocol):
    """What planting a shape needs of the world's planner (`world.rings.Planner`)."""

    rng: np.random.Generator
    pop: Population
    days: int
    base: int
    rings: list[Ring]

    def take_over(self, k: int) -> np.ndarray: ...

    def pending(self, name: str, user: int) -> int: ...

    def _accounts(self, k: int, ring: int, *, created_max: int) -> np.ndarray: ...

    def _merchant(self) -> int: ...

    def _ts(self, day: int, *, night: bool = False, anchor: int | None = None) -> int: ...

    def _amount(self, merchant: int, scale: float = 1.0) -> float: ...

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
    ) -> None: ...


def _groups(
    rng: np.random.Generator, free: np.ndarray, *, share: float, lo: int, hi: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Disjoint groups of sizes in [lo, hi] drawn from `free` users, about `share` of them."""
    want = int(free.shape[0] * share)
    pool = rng.permutation(free)
    out: list[np.ndarray] = []
    used = 0
    while used + hi <= min(want, pool.shape[0]):
        size = int(rng.integers(lo, hi + 1))
        out.append(pool[used : used + size])
        used += size
    return out, pool[used:]


def add_lookalikes(rng: np.random.Generator, pop: Population) -> dict[str, int]:
    """Legitimate groups shaped like each ring topology (see the module docstring)."""
    ent = pop.entities
    free = np.flatnonzero(pop.created_day == 0)
    counts: dict[str, int] = {}
    fams, free = _groups(rng, free, share=0.03, lo=6, hi=12)
    for g in fams:  # pairs share a device, and each pair a card with the next
        j = np.arange(g.shape[0])
        n = max(1, g.shape[0] // 2)
        devs, cards = ent.new("devices", n), ent.new("cards", n)
        pop.shared_device[g] = devs[np.minimum(j // 2, n - 1)]
        pop.card2[g] = cards[np.minimum((j + 1) // 2, n - 1)]
    counts["extended_families"] = len(fams)
    dorms, free = _groups(rng, free, share=0.03, lo=8, hi=30)
    for g in dorms:
        pop.home_ip[g] = ent.new("ips", 1)[0]
    counts["dorms"] = len(dorms)
    pcs, free = _groups(rng, free, share=0.015, lo=4, hi=12)
    for g in pcs:  # an office or library PC many people pay from
        pop.shared_device[g] = ent.new("devices", 1)[0]
    counts["shared_pcs"] = len(pcs)
    relatives, free = _groups(rng, free, share=0.02, lo=3, hi=6)
    for g in relatives:  # a family card in the hands of relatives living apart
        pop.card2[g] = ent.new("cards", 1)[0]
    counts["family_cards"] = len(relatives)
    shops, free = _groups(rng, free, share=0.03, lo=10, hi=30)
    cats = rng.choice(CAT_SHARE.shape[0], size=len(shops), p=CAT_SHARE / CAT_SHARE.sum())
    ids = add_merchants(pop, cats=cats, weight=0.005) if shops else np.zeros(0, np.int64)
    for g, m in zip(shops, ids.tolist(), strict=True):
        pop.fav[g, 0] = m
        pop.fav[g, 1] = m
    counts["shop_regulars"] = len(shops)
    return counts


def plant(planner: Planner, r: int, k: int, shape: str) -> None:
    """Plant ring `r` of about `k` members in `shape` (members set on the ring)."""
    rng, pop, d = planner.rng, planner.pop, planner.days
    ent, ring = pop.entities, planner.rings[r]
    start = int(rng.integers(int(d * 0.15), max(int(d * 0.15) + 1, int(d * 0.85))))
    n_taken = round(k * TAKEN_OVER) if shape in ("chain", "star") else 0
    victims = planner.take_over(n_taken)
    fresh = planner._accounts(k - victims.shape[0], r, created_max=start)
    members = rng.permutation(np.r_[victims, fresh]).astype(np.int64)
    ring.members = members.tolist()
    n = members.shape[0]
    # Per member: own entities unless the shape gives it the ring's.
    own_dev, own_ip, own_card = pop_entities(planner, members)
    uses: list[list[list[tuple[str, int]]]] = [[] for _ in range(n)]  # per member, per use
    if shape == "chain":  # entity j relays members j, j+1 (and j+2 now and then)
        for j in range(n - 1):
            kind = ("device", "ip", "card")[int(rng.integers(0, 3))]
            e = int(ent.new(kind + "s", 1)[0])
            span = 3 if rng.random() < 0.3 and j + 2 < n else 2
            for i in range(j, j + span):
                uses[i].append([(kind, e)])
            getattr(ring, kind + "s").append(e)
    elif shape == "star":
        kind = "device" if rng.random() < 0.7 else "ip"
        e = int(ent.new(kind + "s", 1)[0])
        getattr(ring, kind + "s").append(e)
        for i in range(n):
            uses[i].append([(kind, e)])
    elif shape == "bipartite":  # each stolen card tested once or twice from a ring device
        devs = ent.new("devices", max(1, round(n / 8)))
        stolen = pop.card1[rng.choice(planner.base, size=round(n * 2.5), replace=False)]
        ring.devices, ring.cards = devs.tolist(), stolen.tolist()
        for j, card in enumerate(stolen.tolist()):
            dev = int(devs[int(rng.integers(0, devs.shape[0]))])
            uses[j % n] += [[("card", int(card)), ("device", dev)]] * int(rng.integers(1, 3))
    else:  # mule: nothing shared but shell merchants
        cats = rng.choice(CAT_SHARE.shape[0], size=1 + int(n > 8) + int(n > 20))
        ring.merchants = add_merchants(pop, cats=cats, weight=0.002).tolist()
    for i, u in enumerate(members.tolist()):
        n_txn = len(uses[i]) if shape == "bipartite" else int(rng.integers(2, 6))
        for t in range(n_txn):
            got = {"device": int(own_dev[i]), "ip": int(own_ip[i]), "card": int(own_card[i])}
            if uses[i]:
                got.update(dict(uses[i][t % len(uses[i])]))
            if shape == "mule":
                m = int(ring.merchants[int(rng.integers(0, len(ring.merchants)))])
            else:
                m = planner._merchant()
            planner._add(
                ts=planner._ts(start + int(rng.integers(0, 5))),
                user=u,
                card=got["card"],
                device=got["device"],
                ip=got["ip"],
                merchant=m,
                amount=planner._amount(m),
                ring=r,
                online=True,
            )


def pop_entities(planner: Planner, members: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each member's own phone, home IP and first card (new accounts: from the pending block)."""
    pop, base = planner.pop, planner.base
    out = []
    for name in ("phone", "home_ip", "card1"):
        vals = np.empty(members.shape[0], dtype=np.int64)
        for i, u in enumerate(members.tolist()):
            if u < base:
                vals[i] = getattr(pop, name)[u]
            else:
                vals[i] = planner.pending(name, u)
        out.append(vals)
    return tuple(out)
