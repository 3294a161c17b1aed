"""Point-in-time graph risk (GRAPH_FEATURES) for every transaction of a world.

Snapshots every ``period_days`` (a day by default). The transactions of period [S, S + period)
get the graph risk of snapshot S, which is built from transactions with ``ts < S`` and labels with
``label_ts < S`` only (`gnn.graphdata.build_snapshot`), scored by a GCN that was itself trained
at a snapshot S' <= S under the same rule. Hence every input of a transaction's graph features
existed strictly before the transaction: no later transaction, and no label that arrived after
S, can change them (tests/gnn/test_pit.py checks both). The price is staleness of up to one
period, which is conservative: online, the workers refresh risk continuously. Ring risk, the
served features, is refreshed every ``ring_period_days`` (6 h) under the same rule, from a
`RingIndex` built once, so a refresh costs a count per group, not a sort.

Entity risk (``PitConfig.risk``) is by default what the workers serve online: the score, size
and labelled fraud rate of the ring an entity belongs to, by the graph's own ring rule
(`gnn.ringrisk`), NaN outside rings. Training on another meaning (a label rate for every
entity, say) teaches the served model features it never receives. The GCN's prior-corrected
probability, as its rank among the snapshot's nodes, goes to the ``gcn_score`` column (model
(c) of the evaluation): a refit moves every probability, and a decline threshold chosen on
validation weeks scored by an earlier fit must mean the same thing on the test week.
"label", "gcn" and "blend" remain for experiments, with no online counterpart; GCN-valued risk
makes a poor feature, since each weekly refit changes what the score means (docs/learning.md).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from tqdm.auto import tqdm

from fraudring.logs import get_logger
from gnn.entitystats import (
    ENTITY_FEATURES,
    entity_stats,
    fill_stats_rows,
    user_rows,
)
from gnn.features import DAY_US, GRAPH_FEATURES
from gnn.graphdata import KINDS, GraphConfig, Snapshot, TxnArrays, build_snapshot
from gnn.labelprop import GCN_FEATURES, LP_FEATURES, propagate
from gnn.model import FitInfo, FraudGCN, GcnConfig, fit_gcn, predict_proba
from gnn.ringrisk import RingIndex, fill_ring_rows, ring_risk
from graph.schemas import RingParams

log = get_logger(__name__)


@dataclass(frozen=True)
class PitConfig:
    graph: GraphConfig = field(default_factory=GraphConfig)
    gcn: GcnConfig = field(default_factory=GcnConfig)
    period_days: float = 1.0
    retrain_every: int = 7  # periods between GCN refits (warm-started)
    use_gcn: bool = True
    #: entity risk: "ring" (what the workers serve: `gnn.ringrisk`), or, for experiments only
    #: (no online counterpart), "label" (smoothed known fraud rate), "gcn" (GCN once trained,
    #: label rate before), "blend" (noisy-or of the two).
    risk: str = "ring"
    #: the ring rule of "ring" risk: the workers' (graph.rings.detect's defaults)
    rings: RingParams = field(default_factory=RingParams)
    #: "ring" risk is recomputed this often inside each period: online the workers refresh it
    #: within seconds, and a ring's bust-out lasts a few days.
    ring_period_days: float = 0.25
    #: ENTITY_FEATURES are refreshed this often inside each period (cheap; labels that arrive
    #: during the day count sooner).
    stats_period_days: float = 0.25
    #: also write the graph model's per-entity features (`gnn.labelprop`: GCN_FEATURES and
    #: LP_FEATURES) to the result's frame; the served contract does not take them.
    gnn_features: bool = False


@dataclass
class PitResult:
    #: GRAPH_FEATURES per row, plus gcn_score (max entity risk) and ENTITY_FEATURES
    features: pd.DataFrame
    fits: list[tuple[int, FitInfo]]
    model: FraudGCN | None
    snapshot: Snapshot | None  # the last one, for inspection
    info: dict[str, Any] = field(default_factory=dict)


def fill_rows(
    out: npt.NDArray[np.float64],
    rows: slice,
    node: npt.NDArray[np.int64],
    snap: Snapshot,
    risk: npt.NDArray[np.float64],
) -> None:
    """Write GRAPH_FEATURES of `rows` from one snapshot's node risk and ring arrays."""
    loc = np.stack([snap.local(node[:, k]) for k in range(len(KINDS))], axis=1)
    ok = loc >= 0
    safe = np.maximum(loc, 0)
    for k in range(len(KINDS)):
        out[rows, k] = np.where(ok[:, k], risk[safe[:, k]], np.nan)
    size = np.where(ok, snap.ring_size[safe], -np.inf).max(axis=1)
    rate = np.where(ok, snap.ring_fraud_rate[safe], -np.inf).max(axis=1)
    any_ok = ok.any(axis=1)
    out[rows, 5] = np.where(any_ok, size, np.nan)
    out[rows, 6] = np.where(any_ok, rate, np.nan)


def snapshot_rank(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each node's share of the snapshot's nodes scored at most its probability, in (0, 1]:
    ties share their highest rank. Shape [num_nodes] -> [num_nodes]."""
    if len(p) == 0:
        return p.astype(np.float64)
    order = np.sort(p)
    return np.searchsorted(order, p, side="right").astype(np.float64) / len(p)


def _moments(a: TxnArrays, lo: int, hi: int, days: float) -> Iterator[tuple[int, slice]]:
    """Rows lo..hi cut every `days`: each moment ``at`` with the rows in [at, at + step)."""
    step = max(1, int(days * DAY_US))
    while lo < hi:
        at = int(a.t[lo]) // step * step
        end = min(hi, int(np.searchsorted(a.t, at + step, side="left")))
        yield at, slice(lo, end)
        lo = end


def fill_stats(
    out: npt.NDArray[np.float64],
    a: TxnArrays,
    lo: int,
    hi: int,
    *,
    cfg: PitConfig,
    users: npt.NDArray[np.float64],
) -> None:
    """ENTITY_FEATURES of rows lo..hi, from stats taken every `cfg.stats_period_days`."""
    for at, rows in _moments(a, lo, hi, cfg.stats_period_days):
        delay = cfg.graph.label_delay_days
        stats = entity_stats(a, at, label_delay_days=delay, with_median=False)
        fill_stats_rows(out, rows, a, stats, users)


def fill_ring(
    out: npt.NDArray[np.float64],
    a: TxnArrays,
    lo: int,
    hi: int,
    *,
    cfg: PitConfig,
    index: RingIndex,
) -> list[int]:
    """The ring GRAPH_FEATURES of rows lo..hi, from ring risk taken every `cfg.ring_period_days`
    (each from the rows before its moment); returns how many rings each refresh found."""
    rings: list[int] = []
    for at, rows in _moments(a, lo, hi, cfg.ring_period_days):
        rr = ring_risk(a, at, params=cfg.rings, index=index)
        fill_ring_rows(out, rows, a.node[rows], rr)
        rings.append(rr.rings)
    return rings


def _fit_progress(bar: tqdm[Any], nodes: int, epochs: int, epoch: int, ap: float) -> None:
    # redrawn at once on a terminal; in a log, with the bar's next line (not one per epoch)
    bar.set_postfix_str(
        f"GCN fit on {nodes:,} nodes: epoch {epoch}/{epochs}, validation PR-AUC {ap:.3f}",
        refresh=sys.stderr.isatty(),
    )


def graph_risk_features(
    a: TxnArrays,
    *,
    cfg: PitConfig,
    start_us: int | None = None,
    end_us: int | None = None,
    progress: bool = True,
) -> PitResult:
    """GRAPH_FEATURES for rows with ``start_us <= ts < end_us`` (others NaN), point-in-time."""
    n = len(a.t)
    out = np.full((n, len(GRAPH_FEATURES)), np.nan)
    gcn_out = np.full((n, len(GRAPH_FEATURES)), np.nan)
    rank_out = np.full((n, len(GRAPH_FEATURES)), np.nan)
    lp_out = np.full((n, len(GRAPH_FEATURES)), np.nan)
    stats_out = np.full((n, len(ENTITY_FEATURES)), np.nan)
    fits: list[tuple[int, FitInfo]] = []
    model: FraudGCN | None = None
    snap: Snapshot | None = None
    if n == 0:
        empty = pd.DataFrame(out, columns=list(GRAPH_FEATURES))
        empty["gcn_score"] = np.nan
        empty[list(ENTITY_FEATURES)] = stats_out
        return PitResult(empty, fits, None, None)
    period = int(cfg.period_days * DAY_US)
    first = int(a.t[0] if start_us is None else max(start_us, a.t[0]))
    last = int(a.t[-1] if end_us is None else min(end_us - 1, a.t[-1]))
    starts = np.arange(first // period * period, last + 1, period, dtype=np.int64)
    since_fit = cfg.retrain_every
    rings: list[int] = []
    ring_index = RingIndex.of(a) if cfg.risk == "ring" else None
    users = user_rows(a, period_days=cfg.stats_period_days)
    bar = tqdm(starts, desc="graph snapshots", unit="snap", disable=not progress, leave=False)
    for s in bar:
        at = int(s)
        lo = int(np.searchsorted(a.t, max(at, first), side="left"))
        hi = int(np.searchsorted(a.t, min(at + period, last + 1), side="left"))
        if cfg.use_gcn and since_fit >= cfg.retrain_every:
            train_snap = build_snapshot(a, at, cfg=cfg.graph, training=True)
            assert train_snap.target is not None and train_snap.target_mask is not None
            positives = int((train_snap.target[train_snap.target_mask] > 0).sum())
            if positives >= cfg.gcn.min_positives:
                model, info = fit_gcn(
                    train_snap.x,
                    train_snap.edge_index,
                    train_snap.target,
                    train_snap.target_mask,
                    cfg=cfg.gcn,
                    init=model,
                    split_key=a.node_hash[train_snap.nodes],
                    weight=train_snap.target_weight,
                    on_epoch=partial(_fit_progress, bar, len(train_snap.nodes), cfg.gcn.epochs),
                )
                bar.set_postfix_str("", refresh=sys.stderr.isatty())
                fits.append((at, info))
                since_fit = 0
                log.info("gnn.gcn_fitted", at=at, val_pr_auc=info.val_pr_auc, epochs=info.epochs)
        since_fit += 1
        if hi <= lo:
            continue
        fill_stats(stats_out, a, lo, hi, cfg=cfg, users=users)
        rows = slice(lo, hi)
        if ring_index is not None:
            rings += fill_ring(out, a, lo, hi, cfg=cfg, index=ring_index)
            if model is None and not cfg.gnn_features:
                continue  # the snapshot below only feeds the GCN's column
        snap = build_snapshot(a, at, cfg=cfg.graph)
        if len(snap.nodes) == 0:
            continue
        gcn = predict_proba(model, snap.x, snap.edge_index) if model is not None else None
        if cfg.risk != "ring":
            if cfg.risk == "label" or gcn is None:
                risk = snap.label_risk
            elif cfg.risk == "blend":
                risk = 1.0 - (1.0 - gcn) * (1.0 - snap.label_risk)
            else:
                risk = gcn
            fill_rows(out, rows, a.node[rows], snap, risk)
        if gcn is not None:
            fill_rows(gcn_out, rows, a.node[rows], snap, gcn)
            fill_rows(rank_out, rows, a.node[rows], snap, snapshot_rank(gcn))
        if cfg.gnn_features:
            fill_rows(lp_out, rows, a.node[rows], snap, propagate(snap))
    frame = pd.DataFrame(out, columns=list(GRAPH_FEATURES))
    risks = np.where(np.isnan(rank_out[:, :5]), -np.inf, rank_out[:, :5])
    frame["gcn_score"] = risks.max(axis=1)
    frame.loc[np.isneginf(frame["gcn_score"]), "gcn_score"] = np.nan
    frame[list(ENTITY_FEATURES)] = stats_out
    if cfg.gnn_features:
        frame[list(GCN_FEATURES)] = gcn_out[:, : len(GCN_FEATURES)]
        frame[list(LP_FEATURES)] = lp_out[:, : len(LP_FEATURES)]
    summary = {
        "snapshots": len(starts),
        "fits": len(fits),
        "ring_refreshes": len(rings),
        "rings_per_refresh": float(np.mean(rings)) if rings else 0.0,
    }
    return PitResult(frame, fits, model, snap, summary)
