"""What the graph adds to the fraud model, per ring topology, held out; and under a shift.

For each ring topology (`world.topology`: dense, chain, star, bipartite, mule) two test worlds
(seeds ``seed`` and ``seed + 1``, 30 days, `bench rings`' settings but `TRANSACTIONS` in size)
are built point-in-time as the nightly job builds them, and `fraudring evaluate`'s split is
scored: fit on the training window, early stopping and cost thresholds on its last quarter
(validation), test on the week after a label-delay gap. Nothing is chosen on a test week. Models:

- approve everything (the simple baseline: its PR-AUC is the test week's fraud share, its cost
  every fraud's);
- (a) rules, (b) XGBoost on the transaction's own history, (c) the GCN alone, (d) the served
  model: (b) + ring risk and the merchant's known fraud;
- (e) (d) + the graph model's features: the GCN's per-entity probabilities and label propagation
  (`gnn.labelprop`), and the neighbours' first-stage scores (`gnn.neighbours`: what (b) scored
  the other users of the transaction's card, device and IP); the graph model's contribution is
  (e) - (d); "d+gcn", "d+lp" and "d+nb" are (d) + each part alone, and (e*) whichever of the
  four validation ranks best (`GRAPH_MODELS`; (e*) - (d) is the contribution of the graph model
  one would ship);
- "e on top": the graph model's features boosted on top of (d) (`gnn.stack`: (d) scores its own
  fit rows out of fold, trees start from its margin, kept only where the second half of
  validation shows a gain beyond the bootstrap's 5% quantile); "d on top": the served model's
  graph and merchant features boosted on top of (b) the same way.

The AMLSim samples (where present; the fan-in read backwards, a fan-out; the cycles rewired to
AMLSim's other typologies, `bench.amlshapes`) are loaded as `fraudring load --amlsim` does and
scored likewise, with a window spanning each and the served.

The shifted worlds (`generate(shift=True)`: a fraud burst at merchants with no history and new
devices in the test week) score (b), (d) and (d) with each hedge (`gnn.hedge`). What the nightly
job serves is a hedge with the guard on top (`SERVED`). It is chosen on *validation* worlds of
every topology and of the shift (seeds 101 and 102, their own test weeks, `validate`): the best
mean gain over (b) among the hedges never below (b) by more than `FLOOR` (`choose_hedge`), then
reported on the test worlds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from bench.learnworlds import build, build_amlsim
from bench.ringworlds import AMLSIM, AMLSIM_SAMPLES, amlsim_kind
from gnn import metrics as m
from gnn.dataset import Dataset, label_delay_days, temporal_split
from gnn.evaluate import evaluate_dataset
from gnn.hedge import LABEL_DERIVED, blend, guard, rising, with_dropout
from gnn.labelprop import GCN_FEATURES, LP_FEATURES
from gnn.neighbours import NB_FEATURES, first_stage, neighbour_scores, user_groups
from gnn.stack import fit_on_top
from gnn.tabular import XgbConfig, fit_xgb
from graph.schemas import RingParams

TOPOLOGIES = ("dense", "chain", "star", "bipartite", "mule")
SHIFTED = ("mix",)
VALIDATION_SEEDS = (101, 102)
#: What the nightly job can serve (`FRAUDRING_TRAIN_HEDGE`), each with the guard on top.
SERVED = ("none", "dropout", "monotone", "blend")
#: The served model may fall at most this far below (b) on a validation world.
FLOOR = -0.02
COST_FP, COST_FN = 100.0, 550.0
#: World size: at 150,000 transactions a validation window held as few as 12 known frauds (dense
#: seed 8), which is noise for early stopping, thresholds and the hedge's choice; 600,000 holds
#: about a hundred.
TRANSACTIONS = 600_000
#: The graph model's variants: all its features, then the GCN, label propagation and the
#: neighbours' first-stage scores each alone.
GRAPH_MODELS = ("e", "e_gcn", "e_lp", "e_nb")
#: Every graph-model column (none is served).
GRAPH_MODEL_FEATURES = GCN_FEATURES + LP_FEATURES + NB_FEATURES


Scores = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]  # (validation, test)


class Rows(NamedTuple):
    """`fraudring evaluate`'s split of a world: labels known at the test start, the fit,
    validation and test rows, and the test week's ground truth."""

    known: npt.NDArray[np.int64]
    fit: npt.NDArray[np.intp]
    val: npt.NDArray[np.intp]
    test: npt.NDArray[np.intp]
    y: npt.NDArray[np.int64]


def split_rows(ds: Dataset) -> Rows:
    sp = temporal_split(ds.t, label_delay_days=label_delay_days(ds.frames.meta))
    t = ds.t
    test = np.flatnonzero((t >= sp.test_start) & (t < sp.test_end))
    return Rows(
        known=ds.known_label(sp.test_start),
        fit=np.flatnonzero((t >= sp.fit_start) & (t < sp.val_start)),
        val=np.flatnonzero((t >= sp.val_start) & (t < sp.train_end)),
        test=test,
        y=ds.truth()[test],
    )


def fit_score(
    x: npt.NDArray[np.float64],
    rows: Rows,
    names: list[str],
    *,
    seed: int,
    cfg: XgbConfig | None = None,
    drop: bool = False,
) -> Scores:
    """(validation, test) scores of XGBoost fitted on `x` [rows, len(names)]; with `drop`, every
    fit row also once with its label-derived columns missing (`gnn.hedge.with_dropout`)."""
    xf, yf = x[rows.fit], rows.known[rows.fit]
    if drop:
        graph = np.asarray([i for i, n in enumerate(names) if n in LABEL_DERIVED], np.intp)
        xf, yf = with_dropout(xf, yf, graph)
    x_val = x[rows.val]
    model = fit_xgb(xf, yf, x_val, rows.known[rows.val], features=names, seed=seed, cfg=cfg)
    return model.predict(x_val), model.predict(x[rows.test])


def compare(ds: Dataset, *, seed: int, hedges: bool) -> dict[str, float]:
    """PR-AUC (test week, ground truth) of every model, and the costs of (c) and approving all."""
    rep = evaluate_dataset(ds, seed=seed, cost_fp=COST_FP, cost_fn=COST_FN)
    out = {f"{k[0]}": v["pr_auc"] for k, v in rep.metrics.items()}
    out["c_cost"] = rep.metrics["c_gcn"]["cost_per_1000"]
    rows = split_rows(ds)
    known, fit, val, test, y = rows
    approve = m.approve_all(y, cost_fp=COST_FP, cost_fn=COST_FN)  # the simple baseline
    out["base"], out["approve_cost"] = approve["pr_auc"], approve["cost_per_1000"]
    out["test_frauds"] = float(y.sum())
    out["val_frauds"] = float(known[val].sum())
    x_d, names = ds.matrix()
    tab = [n for n in names if n not in LABEL_DERIVED]
    tab_cols = np.asarray([names.index(n) for n in tab], dtype=np.intp)
    # out-of-fold scores of a first model on its fit rows, its full fit's elsewhere
    oof = partial(first_stage, known=known, fit=fit, val=val, groups=user_groups(ds.arrays))
    first = oof(x_d[:, tab_cols], features=tab, seed=seed, full=rep.models["b_xgb_tabular"])
    gnn = ds.pit.features[list(GCN_FEATURES + LP_FEATURES)].to_numpy(dtype=np.float64)
    x = np.hstack([x_d, gnn, neighbour_scores(ds.arrays, first)])
    served = list(names)
    names = names + list(GRAPH_MODEL_FEATURES)
    idx = {n: i for i, n in enumerate(names)}

    def on(cols: list[str], **kw: Any) -> Scores:
        return fit_score(x[:, [idx[n] for n in cols]], rows, cols, seed=seed, **kw)

    scores = {
        "e": on(served + list(GRAPH_MODEL_FEATURES)),
        "e_gcn": on(served + list(GCN_FEATURES)),
        "e_lp": on(served + list(LP_FEATURES)),
        "e_nb": on(served + list(NB_FEATURES)),
    }
    # the graph model's features boosted on top of (d), whose fit rows are scored out of fold
    d_oof = oof(x_d, features=served, seed=seed, full=rep.models["d_xgb_graph"])

    def on_top(
        base: npt.NDArray[np.float64], cols: list[str]
    ) -> tuple[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]], float]:
        """(validation, test) scores of ``cols`` boosted on top of ``base``, and its trees."""
        c = np.asarray([idx[n] for n in cols], dtype=np.intp)
        top = fit_on_top(
            base[fit],
            x[np.ix_(fit, c)],
            known[fit],
            base_val=base[val],
            x_val=x[np.ix_(val, c)],
            y_val=known[val],
            features=cols,
            seed=seed,
        )
        part = (
            top.predict(base[val], x[np.ix_(val, c)]),
            top.predict(base[test], x[np.ix_(test, c)]),
        )
        return part, float(top.trees)

    scores["e_top"], out["e_top_trees"] = on_top(d_oof, list(GRAPH_MODEL_FEATURES))
    # the served model's graph features boosted on top of (b), out of fold likewise
    scores["d_top"], out["d_top_trees"] = on_top(first, [n for n in served if n in LABEL_DERIVED])
    # the graph model as one would ship it: the variant validation ranks best (never (d) itself)
    e_val = {k: m.average_precision(known[val], scores[k][0]) for k in GRAPH_MODELS}
    out["e_chosen"] = float(GRAPH_MODELS.index(max(GRAPH_MODELS, key=lambda k: e_val[k])))
    scores["e_best"] = scores[GRAPH_MODELS[int(out["e_chosen"])]]
    for key, long in (("b", "b_xgb_tabular"), ("d", "d_xgb_graph")):
        cols = tab if key == "b" else served
        c = np.asarray([idx[n] for n in cols], dtype=np.intp)
        model = rep.models[long]
        scores[key] = (model.predict(x[np.ix_(val, c)]), model.predict(x[np.ix_(test, c)]))
    if hedges:
        scores |= hedge_scores(
            scores, fit=partial(on, served), names=served, y_val=known[val], seed=seed
        )
    d_val = m.average_precision(known[val], scores["d"][0])
    b_val = m.average_precision(known[val], scores["b"][0])
    for key, (_, s_test) in scores.items():
        out[key] = m.average_precision(y, s_test)
    for key in [k for k in scores if k.startswith("h_")]:
        out[f"{key}_val"] = m.average_precision(known[val], scores[key][0])
    out["d_val"], out["b_val"] = d_val, b_val
    return out


def hedge_scores(
    scores: dict[str, Scores],
    *,
    fit: Callable[..., Scores],
    names: list[str],
    y_val: npt.NDArray[np.int64],
    seed: int,
) -> dict[str, Scores]:
    """Each hedge of the graph model (``h_*``) and what the nightly job serves with it
    (``g_*``: the guard on top, the tabular model unless the hedged one wins beyond luck),
    from (b)'s and (d)'s scores and ``fit(drop=..., cfg=...)``, a fit over ``names``."""
    b, d = scores["b"], scores["d"]
    out = {
        "h_none": d,
        "h_dropout": fit(drop=True),
        "h_monotone": fit(cfg=replace(XgbConfig(), monotone=rising(names, LABEL_DERIVED))),
        "h_blend": (blend(b[0], d[0]), blend(b[1], d[1])),
    }
    for h in SERVED:
        chosen = guard(y_val, graph=out[f"h_{h}"][0], tabular=b[0], seed=seed)
        out[f"g_{h}"] = b if chosen == "tabular" else out[f"h_{h}"]
    return out


def choose_hedge(gains: Mapping[str, Sequence[float]], *, floor: float = FLOOR) -> str:
    """The hedge with the best mean gain over (b) among those never below `floor` on any
    validation world; if none holds, the one with the best worst case. A world whose test week
    held no fraud (NaN: nothing to rank) counts for none of them."""
    kept = {h: [v for v in g if not math.isnan(v)] for h, g in gains.items()}
    holding = [h for h, g in kept.items() if g and min(g) >= floor]
    if holding:
        return max(holding, key=lambda h: float(np.mean(kept[h])))
    return max(kept, key=lambda h: min(kept[h], default=-math.inf))


def validate(ds: Dataset, *, seed: int) -> dict[str, float]:
    """Test-week PR-AUC (ground truth) of (b) and of each served hedge, on a validation world."""
    rep = evaluate_dataset(ds, seed=seed, cost_fp=COST_FP, cost_fn=COST_FN, gcn=False)
    rows = split_rows(ds)
    x, names = ds.matrix()
    tab = [i for i, n in enumerate(names) if n not in LABEL_DERIVED]
    scores: dict[str, Scores] = {}
    for key, long, xs in (("b", "b_xgb_tabular", x[:, tab]), ("d", "d_xgb_graph", x)):
        model = rep.models[long]
        scores[key] = (model.predict(xs[rows.val]), model.predict(xs[rows.test]))
    fit = partial(fit_score, x, rows, names, seed=seed)
    scores |= hedge_scores(scores, fit=fit, names=names, y_val=rows.known[rows.val], seed=seed)
    return {k: m.average_precision(rows.y, v[1]) for k, v in scores.items()}


def _hedged(r: dict[str, float]) -> str:
    """Each hedge - (b), then with the guard on top (what would be served)."""
    hedged = ", ".join(f"{h} {r[f'h_{h}'] - r['b']:+.3f}" for h in SERVED[1:])
    served = ", ".join(f"{h} {r[f'g_{h}'] - r['b']:+.3f}" for h in SERVED)
    return f"hedged (d) - (b): {hedged}; served (guard on top) - (b): {served}"


def _row(label: str, r: dict[str, float]) -> str:
    return (
        f"{label:<16}{int(r['test_frauds']):>5}{r['base']:>7.3f}{r['a']:>7.3f}{r['b']:>7.3f}"
        f"{r['c']:>7.3f}{r['d']:>7.3f}{r['e']:>7.3f}{r['e_gcn']:>7.3f}{r['e_lp']:>7.3f}"
        f"{r['e_nb']:>7.3f}"
        f"{r['d'] - r['b']:>+8.3f}{r['e'] - r['d']:>+8.3f}{r['e_best'] - r['d']:>+8.3f}"
        f"{r['e_top'] - r['d']:>+8.3f}{r['d_top'] - r['b']:>+8.3f}"
        f"{r['c_cost']:>9,.0f}{r['approve_cost']:>9,.0f}"
    )


HEADER = (
    f"{'world':<16}{'fraud':>5}{'base':>7}{'(a)':>7}{'(b)':>7}{'(c)':>7}{'(d)':>7}{'(e)':>7}"
    f"{'d+gcn':>7}{'d+lp':>7}{'d+nb':>7}{'d-b':>8}{'e-d':>8}{'e*-d':>8}{'etop-d':>8}{'dtop-b':>8}"
    f"{'(c) $':>9}{'appr $':>9}"
)


def amlsim(*, seed: int) -> dict[str, float]:
    """`compare` on each AMLSim sample present, at a window spanning it and the served one."""
    figures: dict[str, float] = {}
    for sample, reverse, shape in AMLSIM_SAMPLES:
        if not (AMLSIM / sample).is_dir():
            print(f"learning: AMLSim {sample}: not found under {AMLSIM}, skipped", flush=True)
            continue
        for window in (None, RingParams().window_days):
            ds, days = build_amlsim(
                sample, seed=seed, window_days=window, reverse=reverse, shape=shape
            )
            r = compare(ds, seed=seed, hedges=True)
            name = f"aml {amlsim_kind(sample, reverse=reverse, shape=shape)} {days:g}d"
            print(f"learning: {_row(name, r)}", flush=True)
            print(f"learning:   {name}: {_hedged(r)}", flush=True)
            figures |= {f"{name.replace(' ', '_')}_{k}": v for k, v in r.items()}
    return figures


def run(*, transactions: int | None, seed: int) -> dict[str, float | int | str]:
    n = transactions or TRANSACTIONS
    figures: dict[str, float | int | str] = {
        "data": f"world.simulate, {n:,} transactions, 30 days, fraud rate 0.005, false labels "
        "0.0002; test = the last 7 days (ground truth), fit/validation before a 7-day gap",
    }
    t0 = time.perf_counter()
    print(f"learning: {HEADER}", flush=True)
    per: dict[str, list[dict[str, float]]] = {}
    for topology in TOPOLOGIES:
        for s in (seed, seed + 1):
            r = compare(build(topology, s, transactions=n, shift=False), seed=s, hedges=True)
            per.setdefault(topology, []).append(r)
            print(f"learning: {_row(f'{topology} {s}', r)}", flush=True)
            print(f"learning:   {topology} {s}: {_hedged(r)}", flush=True)
            for k, v in r.items():
                figures[f"{topology}_{s}_{k}"] = v
    figures |= amlsim(seed=seed)
    gains: dict[str, list[float]] = {h: [] for h in SERVED}
    for topology in TOPOLOGIES + SHIFTED:
        for s in VALIDATION_SEEDS:
            shift = topology in SHIFTED
            ds = build(topology, s, transactions=n, shift=shift, graph_model=False)
            r = validate(ds, seed=s)
            for h in SERVED:
                gains[h].append(r[f"g_{h}"] - r["b"])
            served = ", ".join(f"{h} {r[f'g_{h}'] - r['b']:+.3f}" for h in SERVED)
            name = f"{'shift ' if shift else ''}{topology} {s}"
            print(
                f"learning: validation {name}: (b) {r['b']:.3f}, served - (b): {served}", flush=True
            )
    chosen = choose_hedge(gains)
    figures["hedge_chosen"] = chosen
    for h in SERVED:
        figures[f"hedge_{h}_validation_min"] = float(np.nanmin(gains[h]))
        figures[f"hedge_{h}_validation_mean"] = float(np.nanmean(gains[h]))
    print(
        f"learning: hedge chosen on the validation worlds (guard on top; best mean, never "
        f"below {FLOOR:+.2f}): {chosen}",
        flush=True,
    )
    for topology in SHIFTED:
        for s in (seed, seed + 1):
            r = compare(build(topology, s, transactions=n, shift=True), seed=s, hedges=True)
            print(f"learning: {_row(f'shift {topology} {s}', r)}", flush=True)
            print(f"learning:   shift {topology} {s}: {_hedged(r)}", flush=True)
            for k, v in r.items():
                figures[f"shift_{topology}_{s}_{k}"] = v
    for topology, rows in per.items():
        figures[f"{topology}_min_d_minus_b"] = min(r["d"] - r["b"] for r in rows)
        figures[f"{topology}_min_e_minus_d"] = min(r["e"] - r["d"] for r in rows)
        figures[f"{topology}_min_e_best_minus_d"] = min(r["e_best"] - r["d"] for r in rows)
        for h in SERVED:
            figures[f"{topology}_hedge_{h}_minus_b_min"] = min(r[f"h_{h}"] - r["b"] for r in rows)
            figures[f"{topology}_served_{h}_minus_b_min"] = min(r[f"g_{h}"] - r["b"] for r in rows)
    figures["seconds"] = time.perf_counter() - t0
    return figures
