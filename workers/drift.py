"""Drift watch: population stability of the main features and of the score, and label quality.

Reference = the decisions of the training window (the reference a retrain stores, or else the
week before the last day); current = the last day of decisions. Both come from the decision
stream, whose ids are millisecond timestamps, so a window is one XRANGE. Bins are the
reference's deciles; PSI = sum((c - r) ln(c / r)) over bins with a small floor. Labels that
arrived since the reference window give recall / precision of the review+decline decisions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import redis

from fraudring.logs import get_logger
from fraudring.settings import Settings
from realtime.keys import Keys

log = get_logger(__name__)
FloatArray = npt.NDArray[np.float64]
#: Features computable from a decision record alone (the velocity ones live in Redis state).
DRIFT_FEATURES = ("log_amount", "hour", "weekday", "has_device", "score")
MAX_ROWS = 200_000
DAY = 86_400.0


def psi(reference: FloatArray, current: FloatArray, *, bins: int = 10) -> float:
    """Population stability index of `current` against `reference` (NaNs dropped)."""
    ref = reference[~np.isnan(reference)]
    cur = current[~np.isnan(current)]
    if ref.size == 0 or cur.size == 0:
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1)
    rp = np.maximum(r / ref.size, 1e-4)
    cp = np.maximum(c / cur.size, 1e-4)
    return float(np.sum((cp - rp) * np.log(cp / rp)))


@dataclass
class Window:
    rows: dict[str, FloatArray]
    decisions: dict[str, str]  # txn_id -> decision
    start: float
    end: float

    @property
    def n(self) -> int:
        return len(self.decisions)


def _records(client: redis.Redis, keys: Keys, *, start: float, hi: str) -> Iterator[Any]:
    """The fields of every record from `start` to `hi`, partition after partition (at most
    MAX_ROWS of each)."""
    for stream in keys.decision_streams:
        lo, seen = f"{int(start * 1000)}-0", 0
        while seen < MAX_ROWS:
            chunk = client.xrange(stream, min=lo, max=hi, count=10_000) or []
            seen += len(chunk)
            for _raw_id, fields in chunk:
                yield fields
            if len(chunk) < 10_000:
                break
            last = chunk[-1][0]
            lo = "(" + (last.decode() if isinstance(last, bytes) else str(last))


def read_window(client: redis.Redis, keys: Keys, *, start: float, end: float) -> Window:
    """Decision records appended between `start` and `end` (epoch seconds), as feature columns."""
    cols: dict[str, list[float]] = {f: [] for f in DRIFT_FEATURES}
    decisions: dict[str, str] = {}
    hi = f"{int(end * 1000)}-{2**63 - 1}"
    for fields in _records(client, keys, start=start, hi=hi):
        if len(decisions) >= MAX_ROWS:
            break
        try:
            d = orjson.loads((fields or {})[b"d"])
            txn = d["txn"]
            amount = float(txn["amount"])
            ts = time.strptime(txn["ts"][:19], "%Y-%m-%dT%H:%M:%S")
        except (KeyError, ValueError, TypeError, orjson.JSONDecodeError):
            continue  # the ingest dead-letters these; drift just skips them
        cols["log_amount"].append(math.log1p(max(amount, 0.0)))
        cols["hour"].append(float(ts.tm_hour))
        cols["weekday"].append(float(ts.tm_wday))
        cols["has_device"].append(float(txn.get("device_id") is not None))
        score = d.get("score")
        cols["score"].append(float(score) if score is not None else float("nan"))
        decisions[str(txn["txn_id"])] = str(d.get("decision"))
    return Window(
        rows={k: np.asarray(v, dtype=np.float64) for k, v in cols.items()},
        decisions=decisions,
        start=start,
        end=end,
    )


def label_quality(
    client: redis.Redis, keys: Keys, decisions: dict[str, str], *, since: float
) -> dict[str, Any]:
    """Recall / precision of review+decline on transaction labels that arrived after `since`."""
    tp = fp = fn = 0
    lo = f"{int(since * 1000)}-0"
    for _id, fields in client.xrange(keys.labels_stream, min=lo, max="+", count=MAX_ROWS) or []:
        try:
            rec = orjson.loads((fields or {})[b"d"])
        except (KeyError, orjson.JSONDecodeError):
            continue
        if rec.get("kind") != "txn" or rec.get("id") not in decisions:
            continue
        flagged = decisions[rec["id"]] in ("review", "decline")
        fraud = rec.get("label") == "fraud"
        tp += flagged and fraud
        fp += flagged and not fraud
        fn += fraud and not flagged
    return {
        "labels_fraud": tp + fn,
        "labels_flagged": tp + fp,
        "recall": tp / (tp + fn) if tp + fn else None,
        "precision": tp / (tp + fp) if tp + fp else None,
    }


def check(client: redis.Redis, keys: Keys, settings: Settings, *, now: float) -> dict[str, Any]:
    """One drift check; stored in ``{p}meta:drift:last`` (the API's /metrics can export it)."""
    raw = client.get(keys.meta("drift:reference"))
    ref_span = orjson.loads(raw) if raw else {"start": now - 8 * DAY, "end": now - DAY}
    reference = read_window(client, keys, start=ref_span["start"], end=ref_span["end"])
    current = read_window(client, keys, start=max(now - DAY, ref_span["end"]), end=now)
    features = {f: psi(reference.rows[f], current.rows[f]) for f in DRIFT_FEATURES if f != "score"}
    score_psi = psi(reference.rows["score"], current.rows["score"])
    finite = [v for v in features.values() if not math.isnan(v)]
    decisions = {**reference.decisions, **current.decisions}
    quality = label_quality(client, keys, decisions, since=ref_span["end"])
    reasons = []
    if finite and max(finite) > settings.drift_psi_bound:
        reasons.append(f"feature PSI {max(finite):.3f} > {settings.drift_psi_bound}")
    if not math.isnan(score_psi) and score_psi > settings.drift_psi_bound:
        reasons.append(f"score PSI {score_psi:.3f} > {settings.drift_psi_bound}")
    recall = quality["recall"]
    if (
        recall is not None
        and quality["labels_fraud"] >= 10
        and recall < settings.drift_recall_floor
    ):
        reasons.append(f"recall {recall:.2f} < {settings.drift_recall_floor}")
    enough = reference.n >= 100 and current.n >= 100
    out = {
        "at": now,
        "reference": {"start": reference.start, "end": reference.end, "n": reference.n},
        "current": {"start": current.start, "end": current.end, "n": current.n},
        "feature_psi": features,
        "max_feature_psi": max(finite) if finite else float("nan"),
        "score_psi": score_psi,
        **quality,
        "bound": settings.drift_psi_bound,
        "breached": bool(reasons) and enough,
        "reasons": reasons if enough else [*reasons, "too few decisions to judge (< 100)"],
    }
    client.set(keys.meta("drift:last"), orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY))
    log.info("drift.checked", breached=out["breached"], reasons=out["reasons"])
    return out


def set_reference(client: redis.Redis, keys: Keys, *, start: float, end: float) -> None:
    """The window the live model was trained on (stream time), for the next drift checks."""
    client.set(keys.meta("drift:reference"), orjson.dumps({"start": start, "end": end}))
