"""The figures of a world directory (simulated or loaded), read from its meta.json counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WorldSummary:
    """The figures of a world directory, as `fraudring simulate --summary` prints them."""

    path: Path
    transactions: int
    fraud_transactions: int
    users: int
    cards: int
    devices: int
    ips: int
    merchants: int
    labels: int
    fraud_labels: int
    rings: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def fraud_rate(self) -> float:
        return self.fraud_transactions / max(1, self.transactions)

    @classmethod
    def from_meta(cls, path: Path, meta: dict[str, Any], *, seconds: float = 0.0) -> WorldSummary:
        c = meta["counts"]
        return cls(
            path=path,
            transactions=c["transactions"],
            fraud_transactions=c["fraud_transactions"],
            users=c["users"],
            cards=c["cards"],
            devices=c["devices"],
            ips=c["ips"],
            merchants=c["merchants"],
            labels=c["labels"],
            fraud_labels=c["fraud_labels"],
            rings=list(meta.get("rings", [])),
            seconds=seconds,
        )
