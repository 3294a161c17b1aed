"""A regime change in a world's last week, for models that must not trust the graph blindly.

Graph features learn where fraud was: the rings, devices and merchants with known fraud. A new
attack can come from where none was (a skimmer at terminals without a fraud history), while a
platform change (an app update that resets device ids) makes every device new. `Shift` does
both over the last `SHIFT_DAYS` days of `world.simulate.generate(shift=True)`:

- a burst at `BURST_MERCHANT_SHARE` of the merchants that have no planted fraud: each day about
  as many ordinary transactions there turn fraud (stolen card details used at inflated amounts)
  as the world's fraud rate plants elsewhere, doubling that day's fraud;
- every device seen in those days is a new one (sharing kept: a ring's devices stay shared, but
  under ids without a history).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from world.population import Population

#: The shifted test week.
SHIFT_DAYS: Final = 7
#: Share of the merchants without planted fraud that the burst hits (at least 5), and the most
#: of their ordinary transactions in a day it turns fraud.
BURST_MERCHANT_SHARE: Final = 0.2
BURST_TXN_SHARE: Final = 0.3
#: Burst frauds are spent at this multiple of the ordinary amount (lognormal around it).
BURST_AMOUNT_FACTOR: Final = 2.5


@dataclass
class Shift:
    from_day: int
    burst_merchants: np.ndarray  # merchant indexes the burst hits
    device_offset: int  # device d becomes d + device_offset in the shifted days
    burst_frauds: int = 0

    @classmethod
    def plan(
        cls, rng: np.random.Generator, pop: Population, *, planted_merchants: np.ndarray, days: int
    ) -> Shift:
        """Pick the burst's merchants among those without planted fraud, and reserve the new
        devices (one per existing device)."""
        ent = pop.entities
        clean = np.setdiff1d(np.arange(ent.merchants), planted_merchants)
        n = min(clean.shape[0], max(5, round(clean.shape[0] * BURST_MERCHANT_SHARE)))
        burst = np.sort(rng.choice(clean, size=n, replace=False)) if n else clean
        offset = int(ent.devices)
        ent.new("devices", offset)
        return cls(from_day=days - SHIFT_DAYS, burst_merchants=burst, device_offset=offset)

    def apply(
        self, rng: np.random.Generator, cols: dict[str, np.ndarray], *, fraud_rate: float
    ) -> int:
        """Shift one day's rows in place; returns how many turned fraud."""
        dev = cols["device"]
        cols["device"] = np.where(dev >= 0, dev + self.device_offset, dev)
        at = np.flatnonzero(np.isin(cols["merchant"], self.burst_merchants) & ~cols["fraud"])
        cap = int(at.shape[0] * BURST_TXN_SHARE)
        want = int(min(cap, round(fraud_rate * cols["fraud"].shape[0])))
        if want <= 0:
            return 0
        hit = rng.choice(at, size=want, replace=False)
        cols["fraud"][hit] = True
        cols["ring"][hit] = -1
        factor = BURST_AMOUNT_FACTOR * rng.lognormal(0.0, 0.3, want)
        cols["amount"][hit] = np.round(cols["amount"][hit] * factor, 2)
        self.burst_frauds += want
        return want

    def as_meta(self) -> dict[str, Any]:
        return {
            "from_day": self.from_day,
            "burst_merchants": int(self.burst_merchants.shape[0]),
            "burst_frauds": self.burst_frauds,
            "new_devices": True,
        }
