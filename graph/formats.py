"""A ring or a neighbourhood for a case file: CSV, JSON, GraphML and PNG.

The subgraph is a `Neighbourhood` (nodes and USED edges); a ring's is its members, the entities
that tie them and the edges between them (`ring_subgraph`). PNG is drawn with matplotlib on the
server (Agg backend), so the picture in a case file does not depend on a browser.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Literal
from xml.sax.saxutils import escape

from graph import evidence_queries as eq
from graph import queries as q
from graph.neighbourhood import mark_payee_accounts
from graph.schemas import EntityRef, GraphEdge, GraphNode, Neighbourhood

if TYPE_CHECKING:
    from graph.repository import CypherStore

Format = Literal["csv", "json", "graphml", "png"]
FORMATS: tuple[str, ...] = ("csv", "json", "graphml", "png")
MEDIA: dict[str, str] = {
    "csv": "text/csv",
    "json": "application/json",
    "graphml": "application/graphml+xml",
    "png": "image/png",
}
COLORS = {
    "user": "#3d6bd6",
    "card": "#e39b1b",
    "device": "#1f9d6b",
    "ip": "#8b5cc7",
    "merchant": "#7b8494",
    "payee's account": "#8fb0ec",  # a merchant node a payee receives at (`account_of`)
}
CSV_COLUMNS = (
    "user_id",
    "user_label",
    "kind",
    "entity_id",
    "entity_label",
    "n",
    "amount_sum",
    "fraud_n",
    "first_seen",
    "last_seen",
)


def ring_subgraph(store: CypherStore, ring_id: str) -> Neighbourhood:
    ring = store.ring(ring_id)
    members = set(ring.members)
    nodes: dict[tuple[str, str], GraphNode] = {
        ("user", m): GraphNode(kind="user", id=m) for m in ring.members
    }
    for r in store._read(q.USER_STATS, {"ids": ring.members}):
        props = nodes[("user", r[0])].props
        props["fraud_label"] = r[5]
        props["fraud_txn_n"] = int(r[6] or 0)
    edges: list[GraphEdge] = []
    by_kind: dict[str, list[str]] = {}
    for e in ring.shared_entities:
        by_kind.setdefault(e.kind, []).append(e.id)
    for kind, ids in by_kind.items():
        for eid, uid, first, last, n, fraud_n, amount, lab in store._read(
            eq.EVIDENCE_LINKS[kind], {"ids": ids}
        ):
            if uid not in members:
                continue
            node = nodes.setdefault((kind, eid), GraphNode(kind=kind, id=eid))
            if lab is not None:
                node.props["fraud_label"] = lab
            edges.append(
                GraphEdge(
                    user_id=uid,
                    kind=kind,
                    entity_id=eid,
                    n=int(n or 0),
                    amount_sum=float(amount or 0),
                    fraud_n=int(fraud_n or 0),
                    first_seen=float(first or 0),
                    last_seen=float(last or 0),
                )
            )
    mark_payee_accounts(nodes, edges)
    return Neighbourhood(
        start=EntityRef(kind="user", id=ring.members[0]),
        hops=1,
        nodes=list(nodes.values()),
        edges=edges,
        truncated=False,
    )


def to_csv(sub: Neighbourhood) -> bytes:
    """One row per edge, with the label of each end."""
    label = {(n.kind, n.id): n.props.get("fraud_label") or "" for n in sub.nodes}
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for e in sub.edges:
        w.writerow(
            [
                e.user_id,
                label.get(("user", e.user_id), ""),
                e.kind,
                e.entity_id,
                label.get((e.kind, e.entity_id), ""),
                e.n,
                f"{e.amount_sum:.2f}",
                e.fraud_n,
                f"{e.first_seen:.0f}",
                f"{e.last_seen:.0f}",
            ]
        )
    return out.getvalue().encode()


def to_graphml(sub: Neighbourhood) -> bytes:
    """GraphML (yEd, Gephi, networkx read it): node ids are `kind:id`."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
        '<key id="kind" for="node" attr.name="kind" attr.type="string"/>',
        '<key id="label" for="node" attr.name="fraud_label" attr.type="string"/>',
        '<key id="account_of" for="node" attr.name="account_of" attr.type="string"/>',
        '<key id="n" for="edge" attr.name="n" attr.type="int"/>',
        '<key id="amount" for="edge" attr.name="amount_sum" attr.type="double"/>',
        '<key id="fraud" for="edge" attr.name="fraud_n" attr.type="int"/>',
        '<key id="first" for="edge" attr.name="first_seen" attr.type="double"/>',
        '<key id="last" for="edge" attr.name="last_seen" attr.type="double"/>',
        '<graph id="G" edgedefault="undirected">',
    ]

    def attr(v: str) -> str:
        return escape(v, {'"': "&quot;"})

    for n in sub.nodes:
        lab = n.props.get("fraud_label") or ""
        owner = n.props.get("account_of")
        payee = f'<data key="account_of">{escape(str(owner))}</data>' if owner else ""
        lines.append(
            f'<node id="{attr(f"{n.kind}:{n.id}")}"><data key="kind">{n.kind}</data>'
            f'<data key="label">{escape(str(lab))}</data>{payee}</node>'
        )
    for i, e in enumerate(sub.edges):
        src, dst = attr(f"user:{e.user_id}"), attr(f"{e.kind}:{e.entity_id}")
        lines.append(
            f'<edge id="e{i}" source="{src}" target="{dst}"><data key="n">{e.n}</data>'
            f'<data key="amount">{e.amount_sum}</data><data key="fraud">{e.fraud_n}</data>'
            f'<data key="first">{e.first_seen}</data><data key="last">{e.last_seen}</data></edge>'
        )
    lines += ["</graph>", "</graphml>"]
    return "\n".join(lines).encode()


def to_png(sub: Neighbourhood, *, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    g = nx.Graph()
    for n in sub.nodes:
        drawn = "payee's account" if n.props.get("account_of") else n.kind
        g.add_node(f"{n.kind}:{n.id}", kind=drawn, fraud=n.props.get("fraud_label") == "fraud")
    for e in sub.edges:
        g.add_edge(f"user:{e.user_id}", f"{e.kind}:{e.entity_id}")
    pos = nx.spring_layout(g, seed=7)
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    start = f"{sub.start.kind}:{sub.start.id}"
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.35, width=0.8)
    for kind, color in COLORS.items():
        nodes = [v for v, d in g.nodes(data=True) if d["kind"] == kind]
        if not nodes:
            continue
        edge = ["#d1343a" if g.nodes[v]["fraud"] else "white" for v in nodes]
        nx.draw_networkx_nodes(
            g,
            pos,
            nodelist=nodes,
            node_color=color,
            edgecolors=edge,
            linewidths=2,
            node_size=[260 if v == start else 110 for v in nodes],
            ax=ax,
            label=kind,
        )
    if g.number_of_nodes() <= 60:
        nx.draw_networkx_labels(
            g, pos, labels={v: v.split(":", 1)[1] for v in g.nodes}, font_size=6, ax=ax
        )
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8, title="red outline: labelled fraud", title_fontsize=7)
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def render(sub: Neighbourhood, fmt: str, *, title: str) -> bytes:
    if fmt == "csv":
        return to_csv(sub)
    if fmt == "graphml":
        return to_graphml(sub)
    if fmt == "png":
        return to_png(sub, title=title)
    return sub.model_dump_json(indent=1).encode()
