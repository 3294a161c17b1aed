"""Detection quality: a hard synthetic world and the fraud-detection-handbook benchmark.

Synthetic: `fraudring evaluate`'s split on a generated hard world of 60 days (2M transactions by
default: with 0.2% fraud, a 30-day world leaves about 200 known frauds to train on and 150 to
validate with, and its figures swing by +-0.1 from one seed to the next); (b) XGBoost on the
transaction's own history (velocity, the user's usual amount) vs (d) XGBoost + point-in-time
graph risk and the merchant's known fraud, and ring recall within 24 h for (d), all on the served
feature contract.

Handbook (chapter-5 protocol of ../shared/datasets/fraud-detection-handbook/README.md): four
folds, each a training week, a 7-day label-delay gap and a 7-day test week (test weeks
2018-08-08 .. 2018-09-04); customers known to be compromised are removed from each test day as
the handbook does. XGBoost's depth and class weighting, and how much labelled history it trains on
(the handbook's training week alone, or the 14 or 28 days that end with it, as a nightly retrain
would), are chosen on four *validation* folds whose test weeks all end before the first test
week (2018-07-11 .. 2018-08-08), never on a test week.

The handbook's (d) is the served feature contract (TABULAR + GRAPH + STATS features: the
merchant's known fraud rate over 1/7/28 settled days, the age of its fraud spell, its
common-point-of-purchase frauds, the user's 30-day median, count and mean amount and its recent
amount spikes), its depth, class weighting and training window chosen on the validation folds.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnn import metrics as m
from gnn.dataset import Dataset, build_dataset, load_frames
from gnn.evaluate import evaluate_dataset
from gnn.features import DAY_US
from gnn.pit import PitConfig
from gnn.tabular import XgbConfig, fit_xgb

HANDBOOK = Path(__file__).resolve().parents[1] / "../shared/datasets/fraud-detection-handbook"
FIRST_TEST_TRAIN = pd.Timestamp("2018-07-25", tz="UTC")
PUBLISHED = {  # chapter 5, mean over the four test folds
    "decision tree": (0.797, 0.579, 0.284),
    "logistic regression": (0.868, 0.623, 0.297),
    "random forest": (0.870, 0.678, 0.299),
    "XGBoost": (0.869, 0.687, 0.303),
}
SERVED_LABEL = (
    "served contract: TABULAR + GRAPH + STATS features (velocity, ring risk, the merchant's "
    "known fraud, the user's usual amount and spikes)"
)
#: Depth, and how strongly the rare frauds are weighted (scale_pos_weight = (neg/pos) ** power):
#: with 28 days of history the model needs less weighting. 300 trees at this learning rate never
#: won on validation (it overfits a week), so the grid spends its fits on the weighting instead.
GRID = [
    XgbConfig(max_depth=d, n_estimators=100, learning_rate=0.1, pos_weight_power=p)
    for d in (3, 6)
    for p in (0.25, 0.5)
]
#: Days of labelled history a handbook fold trains on, ending where its training week ends.
WINDOWS = (7, 14, 28)


def _us(ts: pd.Timestamp) -> int:
    return int(ts.value // 1000)


SYNTHETIC_DAYS = 60


def synthetic(*, transactions: int, seed: int) -> dict[str, float | int | str]:
    from world.simulate import generate

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "world"
        print(
            f"synthetic: generating a hard world of {transactions:,} transactions over "
            f"{SYNTHETIC_DAYS} days",
            flush=True,
        )
        generate(
            out=out,
            transactions=transactions,
            seed=seed,
            difficulty="hard",
            days=SYNTHETIC_DAYS,
            progress=False,
        )
        t0 = time.perf_counter()
        ds = build_dataset(load_frames(out), pit=PitConfig(), progress=True)
        report = evaluate_dataset(ds, seed=seed, cost_fp=100.0, cost_fn=550.0)
    b, d = report.metrics["b_xgb_tabular"], report.metrics["d_xgb_graph"]
    print(f"synthetic: done in {time.perf_counter() - t0:.0f} s; split {report.split}", flush=True)
    return {
        "synthetic_data": f"world.simulate hard, seed {seed}, {transactions:,} transactions, "
        f"{SYNTHETIC_DAYS} days",
        "synthetic_transactions": transactions,
        "synthetic_prauc_tabular": b["pr_auc"],
        "synthetic_prauc_graph": d["pr_auc"],
        "synthetic_prauc_gain": d["pr_auc"] - b["pr_auc"],
        "synthetic_prauc_gcn_alone": report.metrics["c_gcn"]["pr_auc"],
        "synthetic_prauc_rules": report.metrics["a_rules"]["pr_auc"],
        "synthetic_ring_recall_24h": d.get("ring_recall_24h", float("nan")),
        "synthetic_rings_in_test": int(d.get("rings_in_test", 0)),
        "synthetic_roc_auc_tabular": b["roc_auc"],
        "synthetic_roc_auc_graph": d["roc_auc"],
        "synthetic_cp100_tabular": b["card_precision_at_100"],
        "synthetic_cp100_graph": d["card_precision_at_100"],
        "synthetic_d_features": SERVED_LABEL,
        "synthetic_fit_known_frauds": int(report.extra["fit_known_frauds"]),
        "synthetic_val_known_frauds": int(report.extra["val_known_frauds"]),
        "synthetic_test_frauds": int(report.extra["test_frauds"]),
        "synthetic_split": "test "
        + f"{report.split['test_start'][:10]}..{report.split['test_end'][:10]}",
    }


def _rows(
    ds: Dataset, train_start: pd.Timestamp, *, window: int = 7
) -> tuple[np.ndarray, np.ndarray]:
    """A fold's training rows (the ``window`` days ending with its training week), and its test
    week after the 7-day delay without the customers known to be compromised (frauds in the
    training week or on the day ``delay`` before): the test rows do not depend on ``window``."""
    day = (ds.t // DAY_US).astype(np.int64)
    d0 = _us(train_start) // DAY_US
    week = np.flatnonzero((day >= d0) & (day < d0 + 7))
    train = np.flatnonzero((day >= d0 + 7 - window) & (day < d0 + 7))
    y = ds.arrays.label == 1
    users = ds.frames.txns["user_id"].to_numpy()
    known = set(users[week][y[week]].tolist())
    keep: list[np.ndarray] = []
    for i in range(7):
        delay_day = np.flatnonzero((day == d0 + 7 + i - 1) & y)
        known |= set(users[delay_day].tolist())
        rows = np.flatnonzero(day == d0 + 14 + i)
        keep.append(rows[~np.isin(users[rows], list(known))])
    return train, np.concatenate(keep)


def _scores(ds: Dataset, test: np.ndarray, s: np.ndarray) -> dict[str, float]:
    y = (ds.arrays.label[test] == 1).astype(np.int64)
    day = (ds.t[test] // DAY_US).astype(np.int64)
    card = ds.frames.txns["user_id"].to_numpy()[test]
    return {
        "auc": m.roc_auc(y, s),
        "ap": m.average_precision(y, s),
        "cp100": m.card_precision_at_k(day=day, card=card, y=y, s=s, k=100),
    }


def _fold(
    ds: Dataset,
    x: tuple[np.ndarray, list[str]],
    train_start: pd.Timestamp,
    *,
    cfg: XgbConfig,
    window: int,
    seed: int,
) -> dict[str, float]:
    """Train on ``window`` days, skip the 7-day delay, test a week, dropping known-compromised
    customers."""
    train, test = _rows(ds, train_start, window=window)
    y = (ds.arrays.label == 1).astype(np.int64)  # handbook labels; all known by the test start
    xs, names = x
    model = fit_xgb(xs[train], y[train], None, None, features=names, seed=seed, cfg=cfg)
    return _scores(ds, test, model.predict(xs[test]))


def _select_and_test(ds: Dataset, *, seed: int) -> dict[str, Any]:
    """Depth, class weighting and training window chosen on the validation folds, then the four
    test folds."""
    x = ds.matrix()
    val_starts = [FIRST_TEST_TRAIN - pd.Timedelta(days=28 - 7 * k) for k in range(4)]
    best, best_window, best_ap = GRID[0], WINDOWS[0], -1.0
    for window in WINDOWS:
        for cfg in GRID:
            ap = float(
                np.mean(
                    [_fold(ds, x, s, cfg=cfg, window=window, seed=seed)["ap"] for s in val_starts]
                )
            )
            print(
                f"handbook: validation {window} days, depth={cfg.max_depth} "
                f"pos_weight_power={cfg.pos_weight_power}: AP {ap:.3f}",
                flush=True,
            )
            if ap > best_ap:
                best, best_window, best_ap = cfg, window, ap
    folds = [
        _fold(
            ds,
            x,
            FIRST_TEST_TRAIN + pd.Timedelta(days=7 * k),
            cfg=best,
            window=best_window,
            seed=seed,
        )
        for k in range(4)
    ]
    res: dict[str, Any] = {k: float(np.mean([f[k] for f in folds])) for k in ("auc", "ap", "cp100")}
    res["folds"] = " ".join(f"{f['ap']:.3f}" for f in folds)
    res["val_ap"] = best_ap
    res["chosen"] = (
        f"max_depth={best.max_depth} n_estimators={best.n_estimators} "
        f"pos_weight_power={best.pos_weight_power} training_days={best_window}"
    )
    return res


def _ceiling(ds: Dataset, train_start: pd.Timestamp, *, seed: int) -> dict[str, float]:
    """The best any detector that learns from labels 7 days late can do: every fraud ranked
    first except those in the first 7 days of a terminal's compromise (scenario 2: nothing but
    a label tells them apart, and none has arrived). An episode starts at a terminal's first
    scenario-2 fraud after 28 days without one (the simulator's compromise length)."""
    _, test = _rows(ds, train_start)
    truth = ds.frames.truth
    assert truth is not None
    typ = pd.Series(truth["typology"].to_numpy(), index=truth["txn_id"])
    typ = typ.reindex(ds.frames.txns["txn_id"]).to_numpy()
    s2 = np.flatnonzero(typ == "compromised_terminal")
    ep = pd.DataFrame({"m": ds.frames.txns["merchant_id"].to_numpy()[s2], "t": ds.t[s2], "i": s2})
    ep = ep.sort_values(["m", "t"], kind="mergesort")
    new = (ep["m"] != ep["m"].shift()) | (ep["t"] - ep["t"].shift() > 28 * DAY_US)
    young = np.zeros(len(ds.t), dtype=bool)
    young[ep["i"].to_numpy()] = (ep["t"] - ep["t"].where(new).ffill()).to_numpy() < 7 * DAY_US
    seen = (ds.arrays.label[test] == 1) & ~young[test]
    noise = np.random.default_rng(seed).random(len(test)) * 0.5
    return _scores(ds, test, seen + noise)


def handbook(*, seed: int) -> dict[str, float | int | str]:
    from world.handbook import load_handbook

    src = (HANDBOOK / "transactions.parquet").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "handbook"
        print("handbook: loading the handbook transactions", flush=True)
        load_handbook(src=src, out=out, label_delay_days=7.0)
        t0 = time.perf_counter()
        # The first validation fold's longest training window.
        start = _us(FIRST_TEST_TRAIN - pd.Timedelta(days=28 + max(WINDOWS) - 7))
        end = _us(FIRST_TEST_TRAIN + pd.Timedelta(days=42))  # end of the last test week
        # The GCN only feeds model (c), which the handbook table does not report: skipped here.
        # Labels settle continuously (each 7 days after its transaction), so the entity
        # statistics are refreshed hourly rather than every 6 hours.
        pit = PitConfig(use_gcn=False, stats_period_days=1 / 24)
        ds = build_dataset(load_frames(out), pit=pit, start_us=start, end_us=end, progress=True)
    print(f"handbook: features in {time.perf_counter() - t0:.0f} s {ds.timings}", flush=True)
    res = _select_and_test(ds, seed=seed)
    tops = [_ceiling(ds, FIRST_TEST_TRAIN + pd.Timedelta(days=7 * k), seed=seed) for k in range(4)]
    top = {k: float(np.mean([f[k] for f in tops])) for k in ("auc", "ap", "cp100")}
    print("\nhandbook, mean over the four chapter-5 test folds (published vs fraudring):")
    print(f"{'model':<34}{'ROC AUC':>9}{'AP':>8}{'CP@100':>9}")
    for name, (auc, ap, cp) in PUBLISHED.items():
        print(f"{'published ' + name:<34}{auc:>9.3f}{ap:>8.3f}{cp:>9.3f}")
    name = "fraudring (d), served features*"
    print(f"{name:<34}{res['auc']:>9.3f}{res['ap']:>8.3f}{res['cp100']:>9.3f}")
    name = "ceiling: labels 7 days late**"
    print(f"{name:<34}{top['auc']:>9.3f}{top['ap']:>8.3f}{top['cp100']:>9.3f}")
    print(f"* {SERVED_LABEL}")
    print(
        "** every fraud ranked first except the first 7 days of each terminal compromise "
        "(no label has arrived), the rest at random"
    )
    return {
        "handbook_auc": res["auc"],
        "handbook_ap": res["ap"],
        "handbook_cp100": res["cp100"],
        "handbook_ap_folds": res["folds"],
        "handbook_val_ap": res["val_ap"],
        "handbook_chosen": res["chosen"],
        "handbook_d_features": SERVED_LABEL,
        "handbook_ceiling_ap": top["ap"],
        "handbook_ceiling_cp100": top["cp100"],
        "handbook_published_xgb_ap": PUBLISHED["XGBoost"][1],
        "handbook_published_xgb_cp100": PUBLISHED["XGBoost"][2],
    }


def run(*, transactions: int | None, seed: int) -> dict[str, float | int | str]:
    out: dict[str, float | int | str] = {}
    out.update(synthetic(transactions=transactions or 2_000_000, seed=seed))
    out.update(handbook(seed=seed))
    return out
