"""Training data of a world directory: point-in-time features, labels as known, a temporal split.

The split mirrors deployment (the fraud-detection handbook's protocol): a model trained at
``test_start`` knows the transactions of the training window and only the labels that arrived
before ``test_start``; the training window ends one label delay before it (the gap), because
younger transactions have mostly no label yet; the test window follows. Validation (early
stopping, thresholds) is the last part of the training window, so nothing is tuned on test.
Test metrics use ground truth (``truth.parquet``) when the world has it, else the labels.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow.parquet as pq

from fraudring.contract.ids import ID_FIELDS, PAYEE_FIELD
from fraudring.errors import InvalidInput
from gnn.features import (
    DAY_US,
    FEATURE_NAMES,
    GRAPH_FEATURES,
    STATS_FEATURES,
    TABULAR_FEATURES,
    tabular_features,
    ts_micros,
)
from gnn.graphdata import TxnArrays, txn_arrays
from gnn.pit import PitConfig, PitResult, graph_risk_features
from world import schema
from world.io import parquet_errors
from world.rowcheck import refuse_bad_ids


@dataclass
class WorldFrames:
    txns: pd.DataFrame
    labels: pd.DataFrame
    truth: pd.DataFrame | None
    meta: dict[str, Any]
    name: str


def _parquet(path: Path) -> pd.DataFrame:
    with parquet_errors(path):
        return pd.read_parquet(path)


def load_frames(data_dir: Path) -> WorldFrames:
    """Read a world directory; a missing or malformed one is a clear InvalidInput."""
    tx = data_dir / schema.TRANSACTIONS_FILE
    if not tx.is_file():
        raise InvalidInput(f"--data {data_dir}: no {schema.TRANSACTIONS_FILE} (not a world dir)")
    with parquet_errors(tx):
        table = pq.read_table(tx)
    txns = table.to_pandas()
    missing = {f.name for f in schema.TRANSACTIONS if not f.nullable} - set(txns.columns)
    if missing:
        raise InvalidInput(f"--data {data_dir}: transactions lack columns {sorted(missing)}")
    txns = txns.sort_values(["ts", "txn_id"], kind="mergesort").reset_index(drop=True)
    ids = ["txn_id", *ID_FIELDS.values(), PAYEE_FIELD]
    id_columns = [c for c in ids if c in txns.columns]
    refuse_bad_ids(f"--data {data_dir}", table, id_columns)
    lp = data_dir / schema.LABELS_FILE
    labels = (
        _parquet(lp)
        if lp.is_file()
        else pd.DataFrame({"txn_id": [], "label": [], "label_ts": pd.to_datetime([], utc=True)})
    )
    tp = data_dir / schema.TRUTH_FILE
    truth = _parquet(tp) if tp.is_file() else None
    mp = data_dir / schema.META_FILE
    try:
        meta = json.loads(mp.read_text(encoding="utf-8")) if mp.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{mp} is not valid JSON: {exc}") from None
    return WorldFrames(txns, labels, truth, meta, data_dir.name)


def label_delay_days(meta: dict[str, Any], default: float = 7.0) -> float:
    """The world's label delay (top level or under ``params``), in days."""
    value = meta.get("label_delay_days", meta.get("params", {}).get("label_delay_days", default))
    return float(value)


@dataclass(frozen=True)
class Split:
    fit_start: int
    val_start: int
    train_end: int
    test_start: int
    test_end: int

    def as_dict(self) -> dict[str, str]:
        return {k: pd.Timestamp(v, unit="us", tz="UTC").isoformat() for k, v in vars(self).items()}


def temporal_split(
    t: npt.NDArray[np.int64],
    *,
    label_delay_days: float,
    test_days: float = 7.0,
    val_fraction: float = 0.25,
    test_start: int | None = None,
) -> Split:
    """Train | gap (label delay) | test, with validation = the last part of train."""
    if len(t) == 0:
        raise InvalidInput("the world has no transactions")
    day0 = int(t[0]) // DAY_US * DAY_US
    end = (int(t[-1]) // DAY_US + 1) * DAY_US
    ts = test_start if test_start is not None else end - int(test_days * DAY_US)
    te = min(end, ts + int(test_days * DAY_US))
    train_end = ts - int(math.ceil(label_delay_days) * DAY_US)
    if train_end - day0 < 4 * DAY_US:
        raise InvalidInput(
            f"the world spans {(end - day0) / DAY_US:.0f} days: too short for train, a "
            f"{label_delay_days:g}-day label gap and a {test_days:g}-day test window"
        )
    val_start = train_end - max(DAY_US, int((train_end - day0) * val_fraction) // DAY_US * DAY_US)
    return Split(day0, val_start, train_end, ts, te)


def split_of(frames: WorldFrames, *, test_days: float = 7.0) -> Split:
    """`temporal_split` of a world's transactions, read before any feature is built, so a world
    too short for it fails at once."""
    t = np.sort(ts_micros(frames.txns["ts"]))
    return temporal_split(t, label_delay_days=label_delay_days(frames.meta), test_days=test_days)


@dataclass
class Dataset:
    frames: WorldFrames
    arrays: TxnArrays
    x: pd.DataFrame  # FEATURE_NAMES columns
    gcn_score: npt.NDArray[np.float64]
    pit: PitResult
    timings: dict[str, float] = field(default_factory=dict)

    def matrix(self) -> tuple[npt.NDArray[np.float64], list[str]]:
        """FEATURE_NAMES (the served contract) as floats, and their names."""
        return self.x.to_numpy(dtype=np.float64), [str(c) for c in self.x.columns]

    @property
    def t(self) -> npt.NDArray[np.int64]:
        return self.arrays.t

    def known_label(self, cutoff: int) -> npt.NDArray[np.int64]:
        """1 where a fraud label arrived before `cutoff`, else 0 (what a trainer sees)."""
        a = self.arrays
        out: npt.NDArray[np.int64] = ((a.label == 1) & (a.label_ts < cutoff)).astype(np.int64)
        return out

    def truth(self) -> npt.NDArray[np.int64]:
        tr = self.frames.truth
        if tr is None:
            lab: npt.NDArray[np.int64] = (self.arrays.label == 1).astype(np.int64)
            return lab
        pos = pd.Index(tr["txn_id"]).get_indexer(self.frames.txns["txn_id"])
        out = np.zeros(len(pos), dtype=np.int64)
        ok = pos >= 0
        out[ok] = tr["is_fraud"].to_numpy()[pos[ok]].astype(np.int64)
        return out


def build_dataset(
    frames: WorldFrames,
    *,
    pit: PitConfig,
    start_us: int | None = None,
    end_us: int | None = None,
    progress: bool = True,
) -> Dataset:
    """All FEATURE_NAMES for every transaction (graph risk from `start_us` on; NaN before)."""
    import time
    from dataclasses import replace

    delay = label_delay_days(frames.meta)
    pit = replace(pit, graph=replace(pit.graph, label_delay_days=delay))
    t0 = time.perf_counter()
    tab = tabular_features(frames.txns)
    t1 = time.perf_counter()
    arrays = txn_arrays(frames.txns, frames.labels)
    res = graph_risk_features(arrays, cfg=pit, start_us=start_us, end_us=end_us, progress=progress)
    t2 = time.perf_counter()
    x = pd.concat([tab, res.features[list(GRAPH_FEATURES + STATS_FEATURES)]], axis=1)
    x = x[list(FEATURE_NAMES)]
    assert list(x.columns[: len(TABULAR_FEATURES)]) == list(TABULAR_FEATURES)
    timings = {"tabular_s": t1 - t0, "graph_s": t2 - t1}
    gcn = res.features["gcn_score"].to_numpy()
    return Dataset(frames, arrays, x, gcn, res, timings)
