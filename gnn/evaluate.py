"""The honest comparison: rules, XGBoost tabular, GCN alone, XGBoost + graph risk, one split.

Each model is fitted on the training window with the labels known at ``test_start``, validated
(early stopping, thresholds by expected cost) on the last part of the training window, and
scored once on the test window that follows a label-delay gap. Every metric names its data and
split. The rules baseline mirrors realtime's default rules, restricted to tabular features:

- decline (score 1.0): ``card_n_1h >= 10`` (card-testing burst)
- review (0.6): ``amount >= 20000``; ``device_users_7d >= 5``; ``ip_users_7d >= 8``
- add 0.15: ``user_new_device == 1 and amount > 1000``; add 0.1: ``user_ips_7d >= 4 and
  user_new_ip == 1``
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudring.contract.ids import PAYEE_FIELD
from gnn import metrics as m
from gnn.dataset import Dataset, Split, label_delay_days, temporal_split
from gnn.features import DAY_US, US
from gnn.hedge import LABEL_DERIVED
from gnn.ringtruth import (
    PAYEE_ACCOUNTS,
    RingTruth,
    ring_detection,
    ring_truth,
    window_warning,
)
from gnn.tabular import Thresholds, XgbConfig, XgbModel, choose_thresholds, fit_xgb
from graph.schemas import RingParams

MODELS = {
    "a_rules": "(a) rules only",
    "b_xgb_tabular": "(b) XGBoost, tabular features",
    "c_gcn": "(c) GCN alone (max entity risk)",
    "d_xgb_graph": "(d) XGBoost + graph risk",
}

#: How each metric reads in the printed and markdown tables (report.json keeps the keys).
METRICS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR-AUC",
    "recall_at_1pct_fpr": "recall at 1% FPR",
    "recall_at_90pct_precision": "recall at 90% precision",
    "cost_per_1000": "expected cost per 1,000 txns",
    "card_precision_at_100": "Card Precision@100",
    "ring_recall_24h": "rings flagged within 24 h",
    "rings_in_test": "planted rings in test",
    "val_pr_auc": "PR-AUC, validation labels",
}


#: Below these counts of frauds a window's figures are noise: a PR-AUC on 20 positives moves by
#: about 0.1 when one of them changes rank, and thresholds chosen on so few labels collapse.
MIN_TEST_FRAUDS = 30
MIN_VAL_FRAUDS = 20


def thin_evidence(
    *, test_frauds: int, val_known_frauds: int, thresholds: dict[str, dict[str, float]]
) -> list[str]:
    """Why the report's figures cannot be trusted, one sentence each (empty when they can)."""
    out = []
    if test_frauds < MIN_TEST_FRAUDS:
        out.append(
            f"the test window has {test_frauds} fraudulent transaction(s) (< {MIN_TEST_FRAUDS}): "
            "its figures are noise; use a larger world or a longer test window"
        )
    if val_known_frauds < MIN_VAL_FRAUDS:
        out.append(
            f"the validation window has {val_known_frauds} known fraud label(s) "
            f"(< {MIN_VAL_FRAUDS}): thresholds and early stopping rest on too few labels"
        )
    if thresholds and all(t["review"] >= 1.0 and t["decline"] >= 1.0 for t in thresholds.values()):
        out.append(
            "every model's thresholds are 1.0 (no score pays for a review on the validation "
            "labels): the cost figures compare nothing"
        )
    return out


def fmt(key: str, value: float) -> str:
    """A table cell: 3 decimals for scores, whole numbers for counts and money, n/a for NaN."""
    if math.isnan(value):
        return "n/a"
    if key == "cost_per_1000":
        return f"${value:,.0f}"
    return f"{value:.0f}" if key == "rings_in_test" else f"{value:.3f}"


def rules_score(x: pd.DataFrame) -> npt.NDArray[np.float64]:
    def col(name: str) -> npt.NDArray[np.float64]:
        v: npt.NDArray[np.float64] = np.nan_to_num(x[name].to_numpy(dtype=np.float64), nan=-1.0)
        return v

    s = np.where(col("card_n_1h") >= 10, 1.0, 0.0)
    review = (col("amount") >= 20000) | (col("device_users_7d") >= 5) | (col("ip_users_7d") >= 8)
    s = np.maximum(s, np.where(review, 0.6, 0.0))
    s += 0.15 * ((col("user_new_device") == 1) & (col("amount") > 1000))
    s += 0.1 * ((col("user_ips_7d") >= 4) & (col("user_new_ip") == 1))
    return np.minimum(s, 1.0)


def flagged(s: npt.NDArray[np.float64], threshold: float) -> npt.NDArray[np.bool_]:
    """Scores at or above a chosen threshold; 1.0 is `choose_thresholds`' "flag nothing", so a
    score saturated at exactly 1.0 (a GCN's float sigmoid) is not flagged by it."""
    if threshold >= 1.0:
        return np.zeros(s.shape, dtype=bool)
    out: npt.NDArray[np.bool_] = s >= threshold
    return out


def score_metrics(
    *,
    y: npt.NDArray[np.int64],
    s: npt.NDArray[np.float64],
    thr: Thresholds,
    ds: Dataset,
    rows: npt.NDArray[np.int64],
    rings: RingTruth | None,
    cost_fp: float,
    cost_fn: float,
) -> dict[str, float]:
    s = np.where(np.isnan(s), -1.0, s)
    tx = ds.frames.txns.iloc[rows]
    card = tx["card_id"].fillna(tx["user_id"]).to_numpy()
    day = ds.t[rows] // DAY_US
    out = {
        "roc_auc": m.roc_auc(y, s),
        "pr_auc": m.average_precision(y, s),
        "recall_at_1pct_fpr": m.recall_at_fpr(y, s, 0.01),
        "recall_at_90pct_precision": m.recall_at_precision(y, s, 0.9),
        "cost_per_1000": m.expected_cost_per_1000(
            y, flagged(s, thr.decline), cost_fp=cost_fp, cost_fn=cost_fn
        ),
        "card_precision_at_100": m.card_precision_at_k(day=day, card=card, y=y, s=s, k=100),
    }
    if rings is not None:
        out["ring_recall_24h"] = m.ring_recall_within(
            ring_first_fraud=rings.first_fraud,
            ring_members=rings.members,
            user=tx["user_id"].to_numpy(),
            ts=ds.t[rows] / US,
            flagged=flagged(s, thr.review),
        )
        out["rings_in_test"] = float(len(rings.first_fraud))
    return out


@dataclass
class EvalReport:
    data: str
    split: dict[str, str]
    rows: dict[str, int]
    metrics: dict[str, dict[str, float]]
    thresholds: dict[str, dict[str, float]]
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    models: dict[str, XgbModel] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "split": self.split,
            "rows": self.rows,
            "metrics": self.metrics,
            "thresholds": self.thresholds,
            "extra": self.extra,
        }


def evaluate_dataset(
    ds: Dataset,
    *,
    seed: int,
    cost_fp: float,
    cost_fn: float,
    split: Split | None = None,
    xgb_cfg: XgbConfig | None = None,
    exclude_test: npt.NDArray[np.bool_] | None = None,
    gcn: bool = True,
    ring_rule: RingParams | None = None,
) -> EvalReport:
    """Fit (b) and (d), score (a)-(d) on the test window; `exclude_test` drops test rows
    (the handbook removes customers already known to be compromised); without `gcn` (a dataset
    built without the GCN) there is no (c). Rings are scored with `ring_rule` (the deployment's,
    `RingParams.of(settings)`; the defaults without it), as the dataset's ring features were."""
    delay = label_delay_days(ds.frames.meta)
    sp = split or temporal_split(ds.t, label_delay_days=delay)
    t = ds.t
    known = ds.known_label(sp.test_start)
    fit = np.flatnonzero((t >= sp.fit_start) & (t < sp.val_start))
    val = np.flatnonzero((t >= sp.val_start) & (t < sp.train_end))
    test_mask = (t >= sp.test_start) & (t < sp.test_end)
    if exclude_test is not None:
        test_mask &= ~exclude_test
    test = np.flatnonzero(test_mask)
    y_test = ds.truth()[test]
    x_all, names = ds.matrix()
    # (b) gets every feature of the transaction's own history (velocity, the user's usual
    # amount); (d) adds what other entities' labels and the graph say (graph risk, the merchant's
    # known fraud).
    tab = np.asarray([i for i, n in enumerate(names) if n not in LABEL_DERIVED], dtype=np.intp)
    scores_val: dict[str, npt.NDArray[np.float64]] = {}
    scores_test: dict[str, npt.NDArray[np.float64]] = {}
    models: dict[str, XgbModel] = {}
    for key, cols in (("b_xgb_tabular", tab), ("d_xgb_graph", np.arange(len(names)))):
        x_val = x_all[np.ix_(val, cols)]  # once for early stopping and the validation scores
        model = fit_xgb(
            x_all[np.ix_(fit, cols)],
            known[fit],
            x_val,
            known[val],
            features=[names[i] for i in cols],
            seed=seed,
            cfg=xgb_cfg,
        )
        models[key] = model
        scores_val[key] = model.predict(x_val)
        scores_test[key] = model.predict(x_all[np.ix_(test, cols)])
    scores_val["a_rules"] = rules_score(ds.x.iloc[val])
    scores_test["a_rules"] = rules_score(ds.x.iloc[test])
    scores_val["c_gcn"] = np.nan_to_num(ds.gcn_score[val], nan=-1.0)
    scores_test["c_gcn"] = np.nan_to_num(ds.gcn_score[test], nan=-1.0)
    rings = ring_truth(ds, start=sp.test_start, end=sp.test_end)
    report = EvalReport(
        data=ds.frames.name,
        split=sp.as_dict(),
        rows={"fit": len(fit), "val": len(val), "test": len(test)},
        metrics={},
        thresholds={},
        models=models,
    )
    for key in [k for k in MODELS if gcn or k != "c_gcn"]:
        thr = choose_thresholds(known[val], scores_val[key], cost_fp=cost_fp, cost_fn=cost_fn)
        report.thresholds[key] = thr.as_dict()
        report.metrics[key] = score_metrics(
            y=y_test,
            s=scores_test[key],
            thr=thr,
            ds=ds,
            rows=test,
            rings=rings,
            cost_fp=cost_fp,
            cost_fn=cost_fn,
        )
        report.metrics[key]["val_pr_auc"] = m.average_precision(known[val], scores_val[key])
        rec, prec = m.pr_curve(y_test, np.nan_to_num(scores_test[key], nan=-1.0))
        report.curves[key] = (rec.tolist(), prec.tolist())
    report.extra["test_frauds"] = int(y_test.sum())
    report.extra["approve_all"] = m.approve_all(y_test, cost_fp=cost_fp, cost_fn=cost_fn)
    report.extra["val_known_frauds"] = int(known[val].sum())
    report.extra["fit_known_frauds"] = int(known[fit].sum())
    report.extra["warnings"] = thin_evidence(
        test_frauds=report.extra["test_frauds"],
        val_known_frauds=report.extra["val_known_frauds"],
        thresholds=report.thresholds,
    )
    report.extra["rings_at_test_end"] = ring_detection(
        ds, at=sp.test_end, params=ring_rule or RingParams()
    )
    txns = ds.frames.txns
    unnamed = PAYEE_FIELD not in txns.columns or txns[PAYEE_FIELD].isna().all()
    if ds.frames.meta.get("counterparty") and unnamed and report.extra["rings_at_test_end"]:
        report.extra["warnings"].append(PAYEE_ACCOUNTS)
    if span := window_warning(report.extra["rings_at_test_end"]):
        report.extra["warnings"].append(span)
    return report


def baseline_line(report: EvalReport) -> str:
    base = report.extra.get("approve_all") or {}
    if not base:
        return ""
    return (
        f"Approving everything: PR-AUC {fmt('pr_auc', base['pr_auc'])} (the test window's fraud "
        f"share), {fmt('cost_per_1000', base['cost_per_1000'])} per 1,000 transactions."
    )


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """report.json, report.md and pr_curve.png under `out_dir`."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "report.json",
        "markdown": out_dir / "report.md",
        "png": out_dir / "pr_curve.png",
    }
    paths["json"].write_text(json.dumps(report.as_json(), indent=2, default=float) + "\n")
    paths["markdown"].write_text(markdown(report))
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    for key, (rec, prec) in report.curves.items():
        ap = report.metrics[key]["pr_auc"]
        ax.step(rec, prec, where="pre", label=f"{MODELS[key]} (AP {ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(
        f"PR curves, test window of {report.data}\n{report.split['test_start'][:10]}"
        f" .. {report.split['test_end'][:10]} (ground truth)",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths["png"])
    plt.close(fig)
    return paths


def markdown(report: EvalReport) -> str:
    keys = list(next(iter(report.metrics.values())).keys())
    cols = list(report.metrics)
    lines = [
        f"# Evaluation of `{report.data}`",
        "",
        "Split (labels as known at test start; a label-delay gap between train and test): "
        + ", ".join(f"{k} {v}" for k, v in report.split.items()),
        "Rows: " + ", ".join(f"{k} {v:,}" for k, v in report.rows.items()) + ". Test metrics "
        "on ground truth, the validation PR-AUC on the validation window's known labels.",
        "",
        "| metric | " + " | ".join(MODELS[c] for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for k in keys:
        cells = " | ".join(fmt(k, report.metrics[c][k]) for c in cols)
        lines.append(f"| {METRICS.get(k, k)} | {cells} |")
    if baseline := baseline_line(report):
        lines += ["", baseline]
    warnings = report.extra.get("warnings") or []
    if warnings:
        lines += ["", "**Warning:** " + "; ".join(warnings) + "."]
    rd = report.extra.get("rings_at_test_end") or {}
    if rd:
        lines += [
            "",
            f"Ring detection at the test end (labels known then): {rd['ring_recall']:.3f} of "
            f"{rd['rings_confirmed']:.0f} rings of 3 or more with a fraud in the last "
            f"{rd['ring_window_days']:g} days found (Jaccard >= 0.5; {rd['rings_dormant']:.0f} "
            "more were dormant longer); "
            f"{rd['ring_false_share']:.3f} of {rd['rings_flagged']:.0f} flagged rings have none "
            f"of their members ({rd['rings_flagged_on_shape']:.0f} flagged on shape alone, "
            f"{rd['rings_false_on_shape']:.0f} of them without a member).",
        ]
    lines += ["", "Thresholds (validation, expected cost):", ""]
    lines += [
        f"- {MODELS[k]}: review at {v['review']:.4f}, decline at {v['decline']:.4f}"
        for k, v in report.thresholds.items()
    ]
    return "\n".join(lines) + "\n"
