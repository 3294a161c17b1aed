"""Which planted-ring pattern a ring looks like, read from its shape alone (`graph.investigation`
gives it with a ring's evidence)."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from pydantic import BaseModel

from graph.ringrule import Links
from graph.schemas import LINKED_KINDS, Ring

TYPOLOGIES = ("synthetic_identity", "card_testing", "ato", "mule")


class TypologyScore(BaseModel):
    typology: str
    score: float
    reasons: list[str]


def typology_scores(
    ring: Ring,
    links: Links,
    counts: dict[str, dict[str, int]],
    *,
    shops: Sequence[tuple[str, int, int]] = (),
    accounts: Collection[str] = (),
) -> list[TypologyScore]:
    """Which planted-ring pattern the ring looks like, from its shape alone, best first.
    `shops`: (merchant, members who paid there, all its customers) for merchants two or more
    members paid: a shell merchant is one whose customers are mostly the ring. `accounts`:
    the merchant nodes that are payees' accounts, named so in the reasons."""
    n = max(len(links), 1)
    share = {k: sum(1 for kk, _ in links if kk == k) / n for k in LINKED_KINDS}
    size = max(ring.size, 1)
    cards = sum(c.get("card", 0) for c in counts.values()) / size
    young = math.exp(-max(ring.account_age_days, 0.0) / 30)
    via_shop = len({u for (k, _), us in links.items() if k == "merchant" for u in us}) / size
    owned = [(m, members / total) for m, members, total in shops if members >= 3 and total]
    shell = max(owned, key=lambda x: x[1], default=None)
    paid = {e for (k, e) in links if k == "merchant"} | ({shell[0]} if shell else set())
    transfers = bool(paid) and paid <= set(accounts)  # every merchant named is an account
    where = "accounts they pay again" if transfers else "merchants they return to"
    crews = sum(1 for (k, _), us in links.items() if k in ("device", "ip") and len(us) >= 3)
    scores = [
        TypologyScore(
            typology="mule",
            score=max(via_shop, shell[1] if shell else 0.0),
            reasons=[
                f"{via_shop:.0%} of the members are tied by {where}",
                (
                    f"account {shell[0]}: {shell[1]:.0%} of its users are members"
                    if shell and shell[0] in accounts
                    else f"merchant {shell[0]}: {shell[1]:.0%} of its customers are members"
                    if shell
                    else f"no {'account' if transfers else 'merchant'} lives off the members"
                ),
            ],
        ),
        TypologyScore(
            typology="card_testing",
            score=min(1.0, max(cards - 1.0, 0.0) / 3.0),
            reasons=[f"{cards:.1f} cards per member"],
        ),
        TypologyScore(
            typology="synthetic_identity",
            score=0.6 * young + 0.4 * share["card"],
            reasons=[
                f"accounts {ring.account_age_days:.0f} days old on average",
                f"{share['card']:.0%} of the links are shared cards",
            ],
        ),
        TypologyScore(
            typology="ato",
            score=0.5 * (1 - young) + 0.5 * min(1.0, crews / 2),
            reasons=[
                f"accounts {ring.account_age_days:.0f} days old on average",
                f"{crews} devices/IPs each used by 3 or more members",
            ],
        ),
    ]
    for s in scores:
        s.score = round(s.score, 3)
    return sorted(scores, key=lambda s: (-s.score, s.typology))
