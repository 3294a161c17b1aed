"""`fraudring train`, `fraudring evaluate --data DIR`, `fraudring models list|promote|rollback`.

Heavy imports (torch, xgboost) stay inside the commands.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fraudring.cli.tables import compact
from fraudring.registry import ModelRegistry
from fraudring.settings import get_settings

console = Console()


def _fmt(v: object) -> str:
    """A figure as people read it: money and counts whole with separators, the rest 4 digits."""
    if not isinstance(v, float):
        return str(v)
    return f"{v:,.0f}" if math.isfinite(v) and abs(v) >= 1000 else f"{v:.4g}"


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        data: Annotated[
            Path | None,
            typer.Option(help="World or loaded dataset directory (default: DATA_DIR/world)."),
        ] = None,
        promote: Annotated[
            bool, typer.Option(help="Promote when it beats the live model on validation.")
        ] = True,
        gcn: Annotated[
            bool,
            typer.Option(
                help="Fit the GCN (it scores rings for alerts; no input of the fraud model); "
                "--no-gcn skips it (most of the time on data with a million accounts)."
            ),
        ] = True,
    ) -> None:
        """Build features, train GCN + XGBoost, validate, register a version, promote if better."""
        from gnn.pit import PitConfig
        from gnn.service import train_pipeline
        from graph.schemas import RingParams

        settings = get_settings()
        result = train_pipeline(
            settings=settings,
            data_dir=data,
            progress=True,
            promote=promote,
            pit=PitConfig(use_gcn=gcn, rings=RingParams.of(settings)),
        )
        table = Table(title=f"trained {result['version']} on {result['data_window']['name']}")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for k, v in result["metrics"].items():
            table.add_row(k + " (validation window)" if k.startswith("val_") else k, _fmt(v))
        table.add_row(
            "live model's val_pr_auc, same window", _fmt(result["live_val_pr_auc_same_window"])
        )
        table.add_row(
            "thresholds (review / decline)",
            "{review:.3f} / {decline:.3f}".format(**result["thresholds"]),
        )
        table.add_row("promoted", str(result["promoted"]))
        table.add_row("live version", str(result["live"]))
        table.add_row("seconds", _fmt(result["seconds"]))
        console.print(table)

    @app.command()
    def evaluate(
        data: Annotated[Path, typer.Option(help="World or loaded dataset directory.")],
        out: Annotated[
            Path, typer.Option(help="Where report.json, report.md and pr_curve.png go.")
        ] = Path("var/reports/evaluate"),
        gcn: Annotated[
            bool,
            typer.Option(
                help="Fit the GCN weekly for model (c); --no-gcn skips it (most of the time on "
                "data with a million accounts)."
            ),
        ] = True,
    ) -> None:
        """Rules vs XGBoost vs GCN vs XGBoost + graph risk on a temporal split with label delay."""
        from gnn.dataset import build_dataset, load_frames, split_of
        from gnn.evaluate import (
            METRICS,
            MODELS,
            baseline_line,
            evaluate_dataset,
            fmt,
            write_report,
        )
        from gnn.pit import PitConfig
        from graph.schemas import RingParams

        settings = get_settings()
        frames = load_frames(data)
        split = split_of(frames)  # a world too short for the split fails before the features
        rings = RingParams.of(settings)
        ds = build_dataset(frames, pit=PitConfig(use_gcn=gcn, rings=rings), progress=True)
        report = evaluate_dataset(
            ds,
            seed=settings.seed,
            cost_fp=settings.cost_fp,
            cost_fn=settings.cost_fn,
            split=split,
            gcn=gcn,
            ring_rule=rings,
        )
        sp = report.split
        table = Table(
            title=f"{report.data}: test window {sp['test_start'][:10]} .. {sp['test_end'][:10]} "
            f"(ground truth; trained on {sp['fit_start'][:10]} .. {sp['train_end'][:10]} "
            f"with labels known at test start)"
        )
        keys = list(next(iter(report.metrics.values())).keys())
        cols = list(report.metrics)
        table.add_column("metric")
        for c in cols:
            table.add_column(MODELS[c].split(" ", 1)[0], justify="right")
        for k in keys:
            table.add_row(METRICS.get(k, k), *(fmt(k, report.metrics[c][k]) for c in cols))
        table.caption = "; ".join(MODELS[c] for c in cols)
        console.print(table)
        if baseline := baseline_line(report):
            console.print(baseline, highlight=False)
        for warning in report.extra.get("warnings", []):
            console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        rd = report.extra.get("rings_at_test_end") or {}
        if rd:
            console.print(
                f"rings at the test end: recall {rd['ring_recall']:.3f} of "
                f"{rd['rings_confirmed']:.0f} with a fraud in the last "
                f"{rd['ring_window_days']:g} days (FRAUDRING_RING_WINDOW_DAYS; "
                f"{rd['rings_dormant']:.0f} more dormant longer), Jaccard >= 0.5; false share "
                f"{rd['ring_false_share']:.3f} of {rd['rings_flagged']:.0f} flagged; on shape "
                f"alone {rd['rings_flagged_on_shape']:.0f}, {rd['rings_false_on_shape']:.0f} "
                "of them false"
            )
        paths = write_report(report, out)
        console.print("report: " + ", ".join(str(p) for p in paths.values()))

    models = typer.Typer(help="The model registry: list, promote, roll back.", no_args_is_help=True)
    app.add_typer(models, name="models")

    @models.command("list")
    def models_list() -> None:
        """Every registered version, its validation PR-AUC, thresholds and whether it is live."""
        reg = ModelRegistry(get_settings().models_path)
        table = compact(f"models in {reg.root}")
        table.add_column("version", no_wrap=True)  # what promote and rollback take: never cut
        for col in ("live", "val PR-AUC", "review", "decline", "data window"):
            table.add_column(col, overflow="fold")
        for v in reg.versions():
            man = reg.manifest(v)
            thr = man.get("thresholds", {})
            win = man.get("data_window", {})
            table.add_row(
                v,
                "LIVE" if man.get("live") else "",
                _fmt(man.get("metrics", {}).get("val_pr_auc")),
                _fmt(thr.get("review")),
                _fmt(thr.get("decline")),
                f"{win.get('name', '')}\n{str(win.get('start', ''))[:10]} to"
                f"\n{str(win.get('end', ''))[:10]}",
            )
        console.print(table)

    @models.command("promote")
    def models_promote(
        version: Annotated[str, typer.Argument(help="Version to make live.")],
        force: Annotated[
            bool, typer.Option(help="Skip the comparison with the live model.")
        ] = False,
    ) -> None:
        """Make VERSION live if its val_pr_auc beats the live one by the promote margin."""
        settings = get_settings()
        reg = ModelRegistry(settings.models_path)
        ok = reg.promote(version, metric="val_pr_auc", margin=settings.promote_margin, force=force)
        console.print(
            f"{version} is live"
            if ok
            else f"{version} does not beat the live model; kept {reg.live_version()}"
        )

    @models.command("rollback")
    def models_rollback(
        version: Annotated[
            str | None, typer.Argument(help="Version to go back to (default: the previous live).")
        ] = None,
    ) -> None:
        """Make an earlier version live again."""
        reg = ModelRegistry(get_settings().models_path)
        console.print(f"{reg.rollback(version)} is live")
