"""A picture of a few planted rings: members and the entities they share (one panel each)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from fraudring.errors import InvalidInput
from world.io import read_world

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


def draw_rings(world_dir: Path, out: Path, *, ring_ids: list[str] | None = None) -> list[str]:
    """Save a PNG with one panel per ring; returns the ring ids drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    w = read_world(world_dir)
    ring_ids = ring_ids or pick_rings(w.meta.get("rings", []))
    if not ring_ids:
        raise InvalidInput(f"{world_dir} has no planted rings to draw")
    table = w.transactions.append_column("ring_id", w.truth.column("ring_id"))
    table = table.append_column("is_fraud", w.truth.column("is_fraud"))
    rows = table.filter(pc.is_in(table.column("ring_id"), pa.array(ring_ids))).to_pandas()
    hubs: set[tuple[str, str]] = set()
    for col in KINDS:
        values = rows[col].dropna().unique()
        sub = table.filter(pc.is_in(table.column(col), pa.array(values, type=pa.string())))
        users = (
            sub.select([col, "user_id"]).group_by(col).aggregate([("user_id", "count_distinct")])
        )
        for v, n in zip(users.column(col).to_pylist(), users.column(1).to_pylist(), strict=True):
            if n > HUB_USERS:
                hubs.add((col, v))

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
            (r for r in w.meta.get("rings", []) if r["ring_id"] == rid), {}
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
        f"Planted rings in {world_dir.name} ({w.meta.get('difficulty', '')}): members and the "
        f"entities they share (hubs used by >{HUB_USERS} users omitted)"
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return ring_ids
