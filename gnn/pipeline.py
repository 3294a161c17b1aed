"""The training run behind `fraudring train` and the nightly retrain (via gnn.service)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from fraudring.errors import InvalidInput
from fraudring.registry import ModelRegistry
from fraudring.settings import Settings
from gnn import metrics as m
from gnn.dataset import build_dataset, label_delay_days, load_frames, split_of
from gnn.features import FEATURE_NAMES
from gnn.hedge import (
    LABEL_DERIVED,
    blended_model,
    graph_columns,
    guard,
    rising,
    with_dropout,
    without,
)
from gnn.model import FraudGCN
from gnn.pit import PitConfig
from gnn.tabular import REVIEW_COST_FRACTION, XgbConfig, choose_thresholds, fit_xgb
from graph.schemas import RingParams


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat()


def run_training(
    *,
    settings: Settings,
    data_dir: Path,
    work: Path,
    progress: bool,
    promote: bool,
    live_score: Callable[..., float | None],
    save_gcn: Callable[[FraudGCN, Path], dict[str, Path]],
    pit: PitConfig | None = None,
    xgb_cfg: XgbConfig | None = None,
) -> dict[str, Any]:
    """Features -> GCN (inside the point-in-time graph risk) -> XGBoost -> validate -> register.

    The validation window is the newest labelled part of the data (it ends one label delay
    before the newest transaction, since younger ones have no labels yet); labels are those
    known at the newest transaction.
    """
    # a context: the bar ends before an error is printed, so the error is the last line
    with tqdm(total=5, desc="train", unit="step", disable=not progress) as steps:
        steps.set_postfix_str("reading data")
        frames = load_frames(data_dir)
        if not (frames.labels["label"] == 1).any():
            raise InvalidInput(
                f"{frames.name} holds no fraud label: there is nothing to learn fraud from "
                "(`fraudring load` takes them from a label=COLUMN of --columns)"
            )
        sp = split_of(frames, test_days=0.0)  # a world too short fails before the features
        steps.update()
        steps.set_postfix_str("features + GCN (point-in-time)")
        pit = pit or PitConfig(rings=RingParams.of(settings))
        ds = build_dataset(frames, pit=pit, progress=progress)
        steps.update()
        t = ds.t
        cutoff = int(t[-1]) + 1
        known = ds.known_label(cutoff)
        fit = np.flatnonzero(t < sp.val_start)
        val = np.flatnonzero((t >= sp.val_start) & (t < sp.train_end))
        for window, rows, span in (
            ("fit", fit, (sp.fit_start, sp.val_start)),
            ("validation", val, (sp.val_start, sp.train_end)),
        ):
            if not known[rows].any():  # no model can be fitted, validated or compared on it
                raise InvalidInput(
                    f"the {window} window ({_iso(span[0])[:10]} .. {_iso(span[1])[:10]}) holds "
                    "no known fraud label: nothing to fit or validate a model on (a longer "
                    "history, or more labels)"
                )
        x = ds.x.to_numpy(dtype=np.float64)
        steps.set_postfix_str("XGBoost")
        cfg = xgb_cfg or XgbConfig()
        tab = graph_columns(FEATURE_NAMES, LABEL_DERIVED)
        x_fit, y_fit = x[fit], known[fit]
        hedge = str(settings.train_hedge)
        if hedge == "dropout":
            x_fit, y_fit = with_dropout(x_fit, y_fit, tab)
        elif hedge == "monotone":
            cfg = replace(cfg, monotone=rising(FEATURE_NAMES, LABEL_DERIVED))
        model = fit_xgb(
            x_fit,
            y_fit,
            x[val],
            known[val],
            features=list(FEATURE_NAMES),
            seed=settings.seed,
            cfg=cfg,
        )
        # The guard (gnn.hedge): the tabular model in the same contract, kept unless the model that
        # reads the graph ranks the newest labels better beyond luck.
        tab_model = fit_xgb(
            without(x[fit], tab),
            known[fit],
            without(x[val], tab),
            known[val],
            features=list(FEATURE_NAMES),
            seed=settings.seed,
            cfg=xgb_cfg,
        )
        if hedge == "blend":  # the graph model's and the tabular model's mean logit, one booster
            model = blended_model(model, tab_model)
        graph_val, tabular_val = model.predict(x[val]), tab_model.predict(x[val])
        graph_ap = m.average_precision(known[val], graph_val)
        tabular_ap = m.average_precision(known[val], tabular_val)
        chosen = guard(known[val], graph=graph_val, tabular=tabular_val, seed=settings.seed)
        if chosen == "tabular":
            model = tab_model
        s_val = model.predict(x[val])
        thr = choose_thresholds(
            known[val], s_val, cost_fp=settings.cost_fp, cost_fn=settings.cost_fn
        )
        steps.update()
        steps.set_postfix_str("validation")
        metrics = {
            "val_pr_auc": m.average_precision(known[val], s_val),
            "val_roc_auc": m.roc_auc(known[val], s_val),
            "val_recall_at_1pct_fpr": m.recall_at_fpr(known[val], s_val, 0.01),
            "val_recall_at_90pct_precision": m.recall_at_precision(known[val], s_val, 0.9),
            "val_cost_per_1000": m.expected_cost_per_1000(
                known[val], s_val >= thr.decline, cost_fp=settings.cost_fp, cost_fn=settings.cost_fn
            ),
            "val_pr_auc_graph_model": graph_ap,
            "val_pr_auc_tabular_model": tabular_ap,
            "val_known_frauds": float(known[val].sum()),
            "val_rows": float(len(val)),
            "fit_rows": float(len(fit)),
        }
        gcn_fits = ds.pit.fits
        if gcn_fits:
            metrics["gcn_val_pr_auc"] = gcn_fits[-1][1].val_pr_auc
        registry = ModelRegistry(settings.models_path)
        live_ap = live_score(registry, x[val], known[val], list(FEATURE_NAMES))
        steps.update()
        steps.set_postfix_str("register")
        artifacts: dict[str, Path] = {"xgb.json": work / "xgb.json"}
        model.save(artifacts["xgb.json"])
        if ds.pit.model is not None:
            artifacts.update(save_gcn(ds.pit.model, work))
        manifest = {
            "kind": "fraud-model",
            "features": list(FEATURE_NAMES),
            "thresholds": thr.as_dict(),
            "threshold_rule": {
                "cost_fp": settings.cost_fp,
                "cost_fn": settings.cost_fn,
                "review_cost": REVIEW_COST_FRACTION * settings.cost_fp,
            },
            "metrics": metrics,
            "data_window": {"start": _iso(int(t[0])), "end": _iso(int(t[-1])), "name": frames.name},
            "split": {
                "fit": [_iso(sp.fit_start), _iso(sp.val_start)],
                "validation": [_iso(sp.val_start), _iso(sp.train_end)],
                "labels_known_at": _iso(cutoff),
            },
            "xgb": {"best_iteration": model.best_iteration, "params": model.params},
            "guard": {
                "chosen": chosen,
                "rule": "the graph model only when its validation PR-AUC gain over the tabular "
                "model is above 0 at the bootstrap's 5% quantile",
            },
            "hedge": hedge,
            "gcn": {"fits": len(gcn_fits), "trained": ds.pit.model is not None},
            "seed": settings.seed,
            # the settled-outcome rule of the merchant statistics (STATS_FEATURES) it was trained on
            "label_delay_days": label_delay_days(frames.meta),
        }
        version = registry.register(artifacts=artifacts, manifest=manifest)
        margin = settings.promote_margin
        better = live_ap is None or metrics["val_pr_auc"] > live_ap + margin
        promoted = False
        if promote and better:
            promoted = registry.promote(version, metric="val_pr_auc", margin=margin, force=True)
        steps.update()
        return {
            "version": version,
            "live": registry.live_version(),
            "promoted": promoted,
            "live_val_pr_auc_same_window": live_ap,
            "metrics": metrics,
            "guard": chosen,
            "thresholds": thr.as_dict(),
            "data_window": manifest["data_window"],
            "timings": {k: round(v, 2) for k, v in ds.timings.items()},
            "rows": len(t),
        }
