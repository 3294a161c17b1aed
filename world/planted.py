"""What the planner writes down about each planted ring: its truth and its fraudulent rows.

Kept apart from the planners (`world.rings`, `world.topology`) so that both fill the same
records without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Ring:
    ring_id: str
    typology: str
    members: list[int]
    devices: list[int] = field(default_factory=list)
    ips: list[int] = field(default_factory=list)
    cards: list[int] = field(default_factory=list)
    merchants: list[int] = field(default_factory=list)
    fraud_txns: int = 0
    topology: str = "dense"

    def as_meta(self) -> dict[str, object]:
        return {
            "ring_id": self.ring_id,
            "typology": self.typology,
            "size": len(self.members),
            "devices": len(self.devices),
            "ips": len(self.ips),
            "cards": len(self.cards),
            "merchants": len(self.merchants),
            "fraud_txns": self.fraud_txns,
            "topology": self.topology,
        }


@dataclass
class Planted:
    """Fraudulent transactions as columns; `ts` in microseconds since the world's start."""

    ts: list[int] = field(default_factory=list)
    user: list[int] = field(default_factory=list)
    card: list[int] = field(default_factory=list)
    device: list[int] = field(default_factory=list)
    ip: list[int] = field(default_factory=list)
    merchant: list[int] = field(default_factory=list)
    amount: list[float] = field(default_factory=list)
    ring: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts)
