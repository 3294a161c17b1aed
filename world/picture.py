"""A picture of a few planted rings: members and the entities they share (one panel each)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudring.errors import InvalidInput
from world.io import iter_transactions, iter_truth, read_meta

KINDS = {
    "device_id": ("device", "#1f77b4", "s"),
    "ip": ("ip", "#2ca02c", "^"),
    "card_id": ("card", "#ff7f0e", "D"),
    "merchant_id": ("merchant", "#9467bd", "p"),
}
#: Entities used by more users than this (carrier NAT, big merchants) are left out as noise.
HUB_USERS = 40


def pick_rings(rings: list[dict[str, object]], *, per_typology: int = 1) -> list[str]:
    """Per typology, the ring(s) whose size is closest to 8: readable, yet clearly a ring."""
    chosen: list[str] = []
    for typ in sorted({str(r["typology"]) for r in rings}):
        same = [r for r in rings if r["typology"] == typ]
        same.sort(key=lambda r: (abs(int(str(r["size"])) - 8), str(r["ring_id"])))
        chosen += [str(r["ring_id"]) for r in same[:per_typology]]
    return chosen


def _ring_rows(world_dir: Path, ring_ids: list[str]) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    """The rings' rows and the hub entities among theirs, in two streaming passes."""
    wanted = pa.array(ring_ids, type=pa.string())
    parts = []
    for tx, tr in zip(iter_transactions(world_dir), iter_truth(world_dir), strict=True):
        mask = pc.is_in(tr.column("ring_id"), wanted)
        if pc.any(mask).as_py():
            part = pa.Table.from_batches([tx.filter(mask)])
            part = part.append_column("ring_id", tr.column("ring_id").filter(mask))
            parts.append(part.append_column("is_fraud", tr.column("is_fraud").filter(mask)))
    rows = pa.concat_tables(parts).to_pandas()
    # Per entity the distinct users seen so far; an entity is dropped once it is a hub.
    open_: dict[str, set[str]] = {col: set(rows[col].dropna().unique()) for col in KINDS}
    users: dict[tuple[str, str], set[str]] = {}
    hubs: set[tuple[str, str]] = set()
    for batch in iter_transactions(world_dir, columns=["user_id", *KINDS]):
        for col in KINDS:
            if not open_[col]:
                continue
            hit = pa.Table.from_batches([batch]).filter(
                pc.is_in(batch.column(col), pa.array(sorted(open_[col]), type=pa.string()))
            )
            pairs = hit.group_by([col, "user_id"]).aggregate([])
            for v, u in zip(
                pairs.column(col).to_pylist(), pairs.column("user_id").to_pylist(), strict=True
            ):
                seen = users.setdefault((col, v), set())
                seen.add(u)
                if len(seen) > HUB_USERS and v in open_[col]:
                    hubs.add((col, v))
                    open_[col].discard(v)
                    del users[(col, v)]
    return rows, hubs


def draw_rings(world_dir: Path, out: Path, *, ring_ids: list[str] | None = None) -> list[str]:
    """Save a PNG with one panel per ring; returns the ring ids drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    meta_all = read_meta(world_dir)
    ring_ids = ring_ids or pick_rings(meta_all.get("rings", []))
    if not ring_ids:
        raise InvalidInput(f"{world_dir} has no planted rings to draw")
    rows, hubs = _ring_rows(world_dir, ring_ids)

    cols = 2 if len(ring_ids) > 1 else 1
    nrows = (len(ring_ids) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(7.5 * cols, 6.5 * nrows), squeeze=False)
    for ax, rid in zip(axes.flat, ring_ids, strict=False):
        part = rows[rows["ring_id"] == rid]
        g = nx.Graph()
        members = sorted(part["user_id"].unique())
        for col, (kind, _, _) in KINDS.items():
            users_of = part.dropna(subset=[col]).groupby(col)["user_id"].nunique()
            fraud_of = part[part["is_fraud"]].dropna(subset=[col])[col].unique()
            for value, n in users_of.items():
                keep = n >= 2 or (kind == "card" and value in set(fraud_of))
                if not keep or (col, value) in hubs:
                    continue
                g.add_node(f"{kind}:{value}", kind=kind)
                for u in part[part[col] == value]["user_id"].unique():
                    g.add_edge(f"user:{u}", f"{kind}:{value}")
        for u in members:
            g.add_node(f"user:{u}", kind="user")
        pos = nx.spring_layout(g, seed=7, k=1.2 / max(1, len(g) ** 0.5))
        nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.35)
        nx.draw_networkx_nodes(
            g,
            pos,
            ax=ax,
            nodelist=[f"user:{u}" for u in members],
            node_color="#d62728",
            node_size=90,
            label="member account",
        )
        for kind, color, marker in KINDS.values():
            nodes = [n for n, d in g.nodes(data=True) if d["kind"] == kind]
            if nodes:
                nx.draw_networkx_nodes(
                    g,
                    pos,
                    ax=ax,
                    nodelist=nodes,
                    node_color=color,
                    node_shape=marker,
                    node_size=110,
                    label=kind,
                )
        meta: dict[str, object] = next(
            (r for r in meta_all.get("rings", []) if r["ring_id"] == rid), {}
        )
        ax.set_title(
            f"{rid}: {meta.get('typology', '?')}, {len(members)} members, "
            f"{int(part['is_fraud'].sum())} fraud txns"
        )
        ax.legend(loc="lower left", fontsize=8, frameon=False)
        ax.set_axis_off()
    for ax in list(axes.flat)[len(ring_ids) :]:
        ax.set_axis_off()
    fig.suptitle(
        f"Planted rings in {world_dir.name} ({meta_all.get('difficulty', '')}): members and the "
        f"entities they share (hubs used by >{HUB_USERS} users omitted)"
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return ring_ids
