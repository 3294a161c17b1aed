"""Worlds written apart from `world/`, from a description of fraud only: held-out checks for
`bench rings`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FMT = "%Y-%m-%dT%H:%M:%SZ"


def write_csv(
    out: Path, rows: pd.DataFrame, *, start: pd.Timestamp, ids: Mapping[str, Any], ring: Any
) -> Path:
    """A world's `rows` (seconds `t` after `start`, `amt`, `lab`, `delay`) as the CSV `fraudring
    load` reads with its module's COLUMNS: `ids` in their order after `txn_id`, labels 0
    (legitimate), 1 (fraud reported `delay` seconds later) or any other (fraud never reported:
    left blank)."""
    t, delay, lab, amount = (rows[c].to_numpy() for c in ("t", "delay", "lab", "amt"))
    ts = start + pd.to_timedelta(pd.Series(np.floor(t).astype(np.int64)), unit="s")
    lts = ts + pd.to_timedelta(pd.Series(np.floor(delay).astype(np.int64)), unit="s")
    table = pd.DataFrame(
        {
            "txn_id": ["t" + str(i) for i in range(1, len(lab) + 1)],
            **ids,
            "amount": np.clip(np.round(amount.astype(np.float64), 2), 1.0, 9999.99),
            "ts": ts.dt.strftime(FMT),
            "label": np.where(lab == 0, "0", np.where(lab == 1, "1", "")),
            "label_ts": np.where(lab == 1, lts.dt.strftime(FMT), ""),
            "ring": ring,
        }
    )
    table.to_csv(out, index=False, float_format="%.2f")
    return out
