"""The nightly retrain: export, train GCN + XGBoost, evaluate, promote or keep, rescore, report.

Training and evaluation belong to gnn.service (the learning package); this module runs it,
rescores every ring with whatever model is live afterwards, and writes the run report (JSON +
Markdown under ``data_dir/reports``) and ``{p}meta:retrain:last`` for `fraudring status`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudring.errors import FraudringError
from fraudring.logs import get_logger
from workers import drift
from workers.scoring import RingScorer, clear_removed, plan_risks, write_risks
from workers.service import Pipeline, event_time

log = get_logger(__name__)
REFERENCE_S = 7 * 86_400.0


def rescore_all(pipe: Pipeline) -> dict[str, int]:
    """A full ring run, every ring scored with the live model, every entity's risk rewritten."""
    update = pipe.store.detect_rings(touched_users=None, now=event_time(pipe))
    scores, version = pipe.scorer(update.rings)
    written = 0
    for i in range(0, len(update.rings), 2000):
        chunk = update.rings[i : i + 2000]
        plan = plan_risks(chunk, scores, model_version=version, now=time.time())
        written += write_risks(pipe.client, pipe.keys, plan, state=pipe.state)
    cleared = clear_removed(pipe.client, pipe.keys, update.removed, state=pipe.state)
    return {"rings": len(update.rings), "risks_written": written, "risks_cleared": cleared}


def run(pipe: Pipeline, *, reload_scorer: Callable[[], RingScorer]) -> dict[str, Any]:
    """One retrain; returns the report (also written to disk and Redis)."""
    started = time.time()
    report: dict[str, Any] = {"started_at": started, "seed": pipe.settings.seed}
    from gnn.service import train_pipeline  # torch: loaded by the retrain task only

    try:
        result = train_pipeline(settings=pipe.settings)
        report.update(
            outcome="promoted" if result.get("promoted") else "kept production",
            version=result.get("version"),
            live=result.get("live"),
            metrics=result.get("metrics", {}),
            data_window=result.get("data_window"),
            training=result,
        )
    except FraudringError as exc:  # no training data, ...: reported, not retried
        report.update(outcome="not trained", error=exc.message, metrics={})
    pipe.scorer = reload_scorer()
    report["rescore"] = rescore_all(pipe)
    report["finished_at"] = time.time()
    report["seconds"] = round(report["finished_at"] - started, 2)
    if report.get("version"):
        # Drift compares with the decisions the new model was trained close to: the stream's
        # last week before this run (stream time; the data window itself is event time).
        drift.set_reference(pipe.client, pipe.keys, start=started - REFERENCE_S, end=started)
    paths = write_report(pipe.settings.data_dir / "reports", report)
    report["report"] = [str(p) for p in paths]
    pipe.client.set(pipe.keys.meta("retrain:last"), json.dumps(report, default=str))
    log.info("retrain.finished", outcome=report["outcome"], seconds=report["seconds"])
    return report


def write_report(directory: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(report["started_at"], UTC).strftime("%Y%m%dT%H%M%SZ")
    js = directory / f"retrain-{stamp}.json"
    md = directory / f"retrain-{stamp}.md"
    js.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    lines = [
        f"# Retrain {stamp}",
        "",
        f"- outcome: **{report['outcome']}**"
        + (f" ({report['error']})" if "error" in report else ""),
        f"- model version: {report.get('version') or '-'}; live after the run: "
        f"{report.get('live') or '-'}",
        f"- rescored: {report['rescore']['rings']} rings, "
        f"{report['rescore']['risks_written']} entity risks written",
        f"- took {report['seconds']} s",
        "",
    ]
    metrics = report.get("metrics") or {}
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                  for k, v in sorted(metrics.items())]  # fmt: skip
    md.write_text("\n".join(lines) + "\n")
    return js, md
