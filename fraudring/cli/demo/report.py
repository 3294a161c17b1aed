"""The demo's report: what the service decided on the live days, against the world's truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis
from rich.console import Console
from rich.table import Table

from fraudring.settings import Settings

if TYPE_CHECKING:
    from fraudring.cli.demo.replay import LiveResult
    from world.io import World

console = Console()


def _rings_found(settings: Settings, planted: dict[str, set[str]]) -> dict[str, float]:
    """Planted rings (size >= 3) matched by a suspicious graph ring with member Jaccard >= 0.5
    (as bench/graph counts them: households are rings too, but not suspicious ones)."""
    from graph.service import open_store
    from world.io import match_rings

    assert settings.graph_url is not None
    with open_store(settings.graph_url, settings=settings) as store:
        found = [set(r.members) for r in store.all_rings(min_size=3) if r.suspicious]
    hit, big, false = match_rings(planted, found)
    return {
        "planted": big,
        "found": len(found),
        "recall": hit / big if big else float("nan"),
        "false_share": false / len(found) if found else 0.0,
    }


def report(
    *,
    settings: Settings,
    world: World,
    live: LiveResult,
    trained: dict[str, Any],
    out: Path,
    client: redis.Redis,
    port: int,
) -> dict[str, Any]:
    from gnn.metrics import average_precision
    from realtime.keys import Keys
    from realtime.ops import freshness_stats
    from world.io import ring_members

    ids = pa.array(live.txn_ids, pa.string())
    idx = pc.index_in(ids, world.truth["txn_id"]).to_numpy(zero_copy_only=False)
    fraud = world.truth["is_fraud"].to_numpy(zero_copy_only=False)[idx].astype(bool)
    ring_ids = np.asarray(world.truth["ring_id"].to_pylist(), dtype=object)[idx]
    member = world.truth["user_is_ring_member"].to_numpy(zero_copy_only=False)[idx].astype(bool)
    ts = pc.cast(world.transactions["ts"], pa.int64()).to_numpy()[idx] / 1e6
    dec = np.asarray(live.decisions)
    flagged = dec != "approve"
    scores = np.nan_to_num(np.asarray(live.scores, dtype=float), nan=0.0)
    n, n_fraud = len(dec), int(fraud.sum())
    cost = settings.cost_fp * int((flagged & ~fraud).sum()) + settings.cost_fn * int(
        (~flagged & fraud).sum()
    )
    base_cost = settings.cost_fn * n_fraud

    rings: dict[str, float] = {}
    for r in {x for x in ring_ids if x is not None}:
        mask = ring_ids == r
        first = ts[mask & fraud].min() if (mask & fraud).any() else None
        if first is not None:
            rings[r] = float((mask & flagged & (ts <= first + 86_400)).any())
    ring_txn = np.asarray([x is not None for x in ring_ids])
    fresh = freshness_stats(
        client, Keys(settings.redis_prefix, partitions=settings.stream_partitions)
    )
    graph_rings = _rings_found(settings, ring_members(world.truth, world.transactions))

    figures: dict[str, Any] = {
        "live_decisions": n,
        "approve": int((dec == "approve").sum()),
        "review": int((dec == "review").sum()),
        "decline": int((dec == "decline").sum()),
        "degraded": live.degraded,
        "fraud_transactions": n_fraud,
        "fraud_caught_share": float((flagged & fraud).sum() / max(1, n_fraud)),
        "legit_flagged_share": float((flagged & ~fraud).sum() / max(1, n - n_fraud)),
        # of those, made by ring accounts (a synthetic identity's or a mule's everyday purchases:
        # no chargeback, so not fraud by the truth, yet an account an investigator wants to see)
        "legit_flagged_by_ring_accounts": float(
            (flagged & ~fraud & member).sum() / max(1, (flagged & ~fraud).sum())
        ),
        "pr_auc_live": average_precision(fraud.astype(int), scores) if n_fraud else float("nan"),
        "cost_per_1000": 1000 * cost / max(1, n),
        "cost_per_1000_approve_all": 1000 * base_cost / max(1, n),
        "rings_active_live": len(rings),
        "ring_recall_24h": float(np.mean(list(rings.values()))) if rings else float("nan"),
        "ring_txns_with_ring_context": float(np.mean(np.asarray(live.ring_seen)[ring_txn]))
        if ring_txn.any()
        else float("nan"),
        "graph_ring_recall": graph_rings["recall"],
        "graph_ring_false_share": graph_rings["false_share"],
        "graph_rings_found": graph_rings["found"],
        "freshness_p50_s": fresh["p50_s"],
        "freshness_p95_s": fresh["p95_s"],
        "replay_decisions_per_s": n / live.seconds if live.seconds else float("nan"),
        "model_version": trained.get("version"),
        "model_val_pr_auc": (trained.get("metrics") or {}).get("val_pr_auc"),
    }
    table = Table(title="fraudring demo: the live days, against the world's truth")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in figures.items():
        table.add_row(k, f"{v:,.4g}" if isinstance(v, float) else str(v))
    console.print(table)
    png = _plot(out / "report.png", fraud=fraud, scores=scores, flagged=flagged, ts=ts)
    md = out / "report.md"
    md.write_text(
        "# fraudring demo report\n\n"
        "Live days of a simulated world (hard setting), decided by the API with the model the "
        "worker trained on the history; figures against the world's ground truth.\n\n"
        "| figure | value |\n|---|---|\n"
        + "".join(
            f"| {k} | {v:.4g} |\n" if isinstance(v, float) else f"| {k} | {v} |\n"
            for k, v in figures.items()
        )
        + f"\n![scores and catches]({png.name})\n\n"
        f"Investigator page (while the API runs): http://127.0.0.1:{port}/investigate\n"
    )
    (out / "report.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    console.print(f"report: {md} and {png}")
    return figures


def _plot(
    path: Path, *, fraud: np.ndarray, scores: np.ndarray, flagged: np.ndarray, ts: np.ndarray
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.linspace(0, 1, 41)
    a.hist(scores[~fraud], bins=bins, alpha=0.7, label="legitimate", color="#3d6bd6")
    a.hist(scores[fraud], bins=bins, alpha=0.8, label="fraud", color="#d1343a")
    a.set_yscale("log")
    a.set_xlabel("model score")
    a.set_ylabel("transactions (log)")
    a.set_title("Scores on the live days")
    a.legend()
    day = ((ts - ts.min()) // 86_400).astype(int)
    days = np.arange(day.max() + 1)
    a_fraud = np.bincount(day[fraud], minlength=len(days))
    caught = np.bincount(day[fraud & flagged], minlength=len(days))
    b.bar(days, a_fraud, color="#f0b3b5", label="fraud transactions")
    b.bar(days, caught, color="#d1343a", label="reviewed or declined")
    b.set_xlabel("live day")
    b.set_title("Fraud caught per day")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
