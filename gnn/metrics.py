"""Detection metrics, pure numpy: each takes labels and scores and returns a number.

PR-AUC is average precision (the step-wise sum sklearn and the handbook use, no interpolation).
Ties in scores are handled as one threshold (all tied rows flip together).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Array = npt.ArrayLike


def _curve(y: Array, s: Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct threshold, highest first."""
    yy = np.asarray(y, dtype=np.float64)
    ss = np.asarray(s, dtype=np.float64)
    if yy.shape != ss.shape:
        raise ValueError("labels and scores must have the same length")
    ss = np.where(np.isnan(ss), -np.inf, ss)
    order = np.argsort(-ss, kind="mergesort")
    ys, st = yy[order], ss[order]
    last = np.r_[np.flatnonzero(np.diff(st) != 0), len(st) - 1]
    tp = np.cumsum(ys)[last]
    fp = (last + 1) - tp
    return tp, fp, st[last]


def roc_auc(y: Array, s: Array) -> float:
    tp, fp, _ = _curve(y, s)
    if tp[-1] == 0 or fp[-1] == 0:
        return float("nan")
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return float(np.trapezoid(tpr, fpr))


def average_precision(y: Array, s: Array) -> float:
    tp, fp, _ = _curve(y, s)
    if tp[-1] == 0:
        return float("nan")
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def recall_at_fpr(y: Array, s: Array, max_fpr: float = 0.01) -> float:
    """Highest recall whose false-positive rate stays at or below `max_fpr`."""
    tp, fp, _ = _curve(y, s)
    if tp[-1] == 0 or fp[-1] == 0:
        return float("nan")
    ok = fp / fp[-1] <= max_fpr
    return float((tp[ok] / tp[-1]).max()) if ok.any() else 0.0


def recall_at_precision(y: Array, s: Array, min_precision: float = 0.9) -> float:
    tp, fp, _ = _curve(y, s)
    if tp[-1] == 0:
        return float("nan")
    ok = tp / (tp + fp) >= min_precision
    return float((tp[ok] / tp[-1]).max()) if ok.any() else 0.0


def expected_cost_per_1000(
    y: Array, flagged: Array, *, cost_fp: float = 100.0, cost_fn: float = 550.0
) -> float:
    """Cost of false declines and missed fraud per 1,000 transactions, for binary decisions."""
    yy = np.asarray(y, dtype=bool)
    ff = np.asarray(flagged, dtype=bool)
    if len(yy) == 0:
        return float("nan")
    fp = np.sum(ff & ~yy)
    fn = np.sum(~ff & yy)
    return float((fp * cost_fp + fn * cost_fn) / len(yy) * 1000.0)


def approve_all(y: Array, *, cost_fp: float, cost_fn: float) -> dict[str, float]:
    """The simple baseline beside every model: approve everything (its PR-AUC is the window's
    fraud share, its cost every fraud's)."""
    yy = np.asarray(y, dtype=np.float64)
    cost = expected_cost_per_1000(
        yy, np.zeros(len(yy), dtype=bool), cost_fp=cost_fp, cost_fn=cost_fn
    )
    return {"pr_auc": float(yy.mean()) if len(yy) else float("nan"), "cost_per_1000": cost}


def card_precision_at_k(
    *, day: Sequence[int] | np.ndarray, card: Sequence[str] | np.ndarray, y: Array, s: Array, k: int
) -> float:
    """Handbook Card Precision@k: per day, cards ranked by their highest score, share of the top
    k with a fraud that day; cards detected (fraudulent and in the top k) on an earlier day are
    left out of later days; averaged over days. The denominator is always k."""
    d = np.asarray(day)
    c = np.asarray(card)
    yy = np.asarray(y, dtype=np.int64)
    ss = np.asarray(s, dtype=np.float64)
    detected: set[object] = set()
    per_day: list[float] = []
    for dv in np.unique(d):
        m = d == dv
        cards, inv = np.unique(c[m], return_inverse=True)
        best = np.full(len(cards), -np.inf)
        np.maximum.at(best, inv, np.where(np.isnan(ss[m]), -np.inf, ss[m]))
        fraud = np.zeros(len(cards), dtype=np.int64)
        np.maximum.at(fraud, inv, yy[m])
        keep = np.array([cd not in detected for cd in cards], dtype=bool)
        idx = np.flatnonzero(keep)
        top = idx[np.argsort(-best[idx], kind="mergesort")[:k]]
        hits = top[fraud[top] == 1]
        per_day.append(len(hits) / k)
        detected.update(cards[hits].tolist())
    return float(np.mean(per_day)) if per_day else float("nan")


def ring_recall_within(
    *,
    ring_first_fraud: dict[str, float],
    ring_members: dict[str, set[str]],
    user: Sequence[str] | np.ndarray,
    ts: Array,
    flagged: Array,
    horizon_s: float = 86_400.0,
) -> float:
    """Share of rings with a member's transaction flagged no later than `horizon_s` after the
    ring's first fraud (times in seconds; only rings listed in `ring_first_fraud` count)."""
    if not ring_first_fraud:
        return float("nan")
    u = np.asarray(user)
    t = np.asarray(ts, dtype=np.float64)
    f = np.asarray(flagged, dtype=bool)
    flagged_users: dict[str, float] = {}
    for uu, tt in zip(u[f].tolist(), t[f].tolist(), strict=True):
        if uu not in flagged_users or tt < flagged_users[uu]:
            flagged_users[uu] = tt
    found = 0
    for ring, first in ring_first_fraud.items():
        earliest = min(
            (flagged_users[m] for m in ring_members.get(ring, set()) if m in flagged_users),
            default=np.inf,
        )
        found += int(earliest <= first + horizon_s)
    return found / len(ring_first_fraud)


def gain_lower_bound(y: Array, new: Array, base: Array, *, seed: int, draws: int = 200) -> float:
    """The 5% quantile of the PR-AUC gain of scores ``new`` over ``base`` on the same rows [n],
    resampled in pairs (a bootstrap over rows): how much of the gain is not luck (-inf when no
    resample holds a positive)."""
    yy, nn, bb = np.asarray(y), np.asarray(new), np.asarray(base)
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(draws):
        i = rng.integers(0, len(yy), len(yy))
        gains.append(average_precision(yy[i], nn[i]) - average_precision(yy[i], bb[i]))
    finite = np.asarray(gains)[np.isfinite(gains)]
    return float(np.quantile(finite, 0.05)) if len(finite) else -np.inf


def pr_curve(y: Array, s: Array) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) points, for plots."""
    tp, fp, _ = _curve(y, s)
    if tp[-1] == 0:
        return np.array([0.0]), np.array([1.0])
    return np.r_[0.0, tp / tp[-1]], np.r_[1.0, tp / (tp + fp)]
