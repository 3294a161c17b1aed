"""The whole graph as arrays for PyG: features, labels, edge_index and the id <-> index map.

Nodes and edges are read in pages (`chunk_size` nodes per page by internal id on FalkorDB; a
streamed result on Neo4j) and joined on the backend's internal node key. Entity counts and
first/last activity come from their edges, which is what ingest aggregates.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fraudring.logs import get_logger
from graph import queries as q
from graph.schemas import EXPORT_FEATURES, KINDS, LABELS, GraphExport

if TYPE_CHECKING:
    from graph.cypher import CypherBackend

log = get_logger(__name__)
F64 = npt.NDArray[np.float64]
_LABEL_EXPR = "CASE n.fraud_label WHEN 'fraud' THEN 1 WHEN 'legitimate' THEN 0 ELSE -1 END"


def _cat(parts: list[F64]) -> F64:
    return np.concatenate(parts) if parts else np.empty(0)


def export(store: CypherBackend, *, chunk_size: int = 200_000) -> GraphExport:
    t0 = time.perf_counter()
    rows = store._read(q.NEWEST_TS)
    now = float(rows[0][0]) if rows and rows[0][0] is not None else 0.0
    kinds: list[F64] = []
    keys: list[F64] = []
    key_strs: list[str] = []
    ids: list[str] = []
    props: dict[str, list[F64]] = {c: [] for c in ("n", "amount", "first", "last", "ftx", "ltx")}
    labels: list[F64] = []
    node_key = store.node_key("n")
    ukey, xkey = store.node_key("u"), store.node_key("x")
    node_pages = list(store._pages("n", page_size=chunk_size))
    edge_pages = [(p, v) for p, v in store._pages("u", page_size=chunk_size)]

    def node_task(task: tuple[int, str, dict[str, object]]) -> Any:
        k_index, pred, page = task
        kind = KINDS[k_index]
        exprs = q.USER_EXPORT_COLS if kind == "user" else q.ENTITY_EXPORT_COLS
        match = f"MATCH (n:{LABELS[kind]}) WHERE {pred}"
        if kind == "user":
            match += q.USER_EXPORT_MATCH
        numeric = [*exprs, _LABEL_EXPR]
        if store.numeric_keys:
            numeric.append(node_key)
        strings = ["n.id"] if store.numeric_keys else ["n.id", node_key]
        return store._columns(match, numeric, dict(page), strings=strings)

    def edge_task(task: tuple[str, dict[str, object]]) -> Any:
        pred, page = task
        match = f"MATCH (u:User)-[r:USED]->(x) WHERE {pred}"
        if store.numeric_keys:
            return store._columns(match, [ukey, xkey, *q.EDGE_EXPORT_COLS], dict(page))
        return store._columns(match, list(q.EDGE_EXPORT_COLS), dict(page), strings=[ukey, xkey])

    tasks = [(k, pred, page) for k in range(len(KINDS)) for pred, page in node_pages]
    with ThreadPoolExecutor(max_workers=store.read_parallelism) as pool:
        node_results = list(pool.map(node_task, tasks))
        edge_results = list(pool.map(edge_task, edge_pages))
    for (k_index, _pred, _page), (cols, strs) in zip(tasks, node_results, strict=True):
        kind = KINDS[k_index]
        exprs = q.USER_EXPORT_COLS if kind == "user" else q.ENTITY_EXPORT_COLS
        count = len(strs[0])
        if count == 0:
            continue
        ids += strs[0]
        kinds.append(np.full(count, k_index, dtype=np.float64))
        if store.numeric_keys:
            keys.append(cols[-1])
        else:
            key_strs += strs[1]
        labels.append(cols[len(exprs)])
        nan = np.full(count, np.nan)
        if kind == "user":
            for name, col in zip(
                ("n", "amount", "first", "last", "ftx", "ltx"), cols, strict=False
            ):
                props[name].append(col)
        else:
            for name in ("n", "amount", "first", "last"):
                props[name].append(nan)
            props["ftx"].append(cols[0])
            props["ltx"].append(cols[1])
    n_nodes = len(ids)
    src_parts: list[F64] = []
    dst_parts: list[F64] = []
    src_strs: list[str] = []
    dst_strs: list[str] = []
    eattr: list[list[F64]] = [[] for _ in q.EDGE_EXPORT_COLS]
    for cols, strs in edge_results:
        if store.numeric_keys:
            src_parts.append(cols[0])
            dst_parts.append(cols[1])
            rest = cols[2:]
        else:
            rest = cols
            src_strs += strs[0]
            dst_strs += strs[1]
        for i, col in enumerate(rest):
            eattr[i].append(col)
    if store.numeric_keys:
        all_keys = np.rint(_cat(keys)).astype(np.int64)
        order = np.argsort(all_keys)
        src = order[
            np.searchsorted(all_keys, np.rint(_cat(src_parts)).astype(np.int64), sorter=order)
        ]
        dst = order[
            np.searchsorted(all_keys, np.rint(_cat(dst_parts)).astype(np.int64), sorter=order)
        ]
    else:
        pos = {k: i for i, k in enumerate(key_strs)}
        src = np.array([pos[k] for k in src_strs], dtype=np.int64)
        dst = np.array([pos[k] for k in dst_strs], dtype=np.int64)
    e_n, e_amount, e_fraud, e_first, e_last = (np.nan_to_num(_cat(c)) for c in eattr)
    kind_arr = _cat(kinds).astype(np.int8)
    n = np.nan_to_num(_cat(props["n"]), nan=-1.0)
    amount = np.nan_to_num(_cat(props["amount"]), nan=-1.0)
    first = _cat(props["first"])
    last = _cat(props["last"])
    ent = kind_arr != 0
    if len(dst):
        n[ent] = np.bincount(dst, weights=e_n, minlength=n_nodes)[ent]
        amount[ent] = np.bincount(dst, weights=e_amount, minlength=n_nodes)[ent]
        efirst = np.full(n_nodes, np.inf)
        np.minimum.at(efirst, dst, e_first)
        elast = np.full(n_nodes, -np.inf)
        np.maximum.at(elast, dst, e_last)
        first[ent], last[ent] = efirst[ent], elast[ent]
    first = np.where(np.isfinite(first), first, now)
    last = np.where(np.isfinite(last), last, now)
    degree = np.bincount(np.concatenate([src, dst]), minlength=n_nodes).astype(np.float64)
    ftx = np.nan_to_num(_cat(props["ftx"]))
    ltx = np.nan_to_num(_cat(props["ltx"]))
    x = np.zeros((n_nodes, len(EXPORT_FEATURES)), dtype=np.float32)
    x[np.arange(n_nodes), kind_arr] = 1.0
    x[:, 5] = np.log1p(degree)
    x[:, 6] = np.log1p(np.maximum(n, 0))
    x[:, 7] = np.log1p(np.maximum(amount, 0))
    x[:, 8] = ftx
    x[:, 9] = ltx
    x[:, 10] = (now - first) / 86400
    x[:, 11] = (now - last) / 86400
    label = np.nan_to_num(_cat(labels), nan=-1.0)
    y = np.full(n_nodes, -1, dtype=np.int8)
    y[(label == 0) | (ltx > 0)] = 0
    y[(label == 1) | (ftx > 0)] = 1
    edge_index = np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])]).astype(np.int64)
    attr = np.stack([np.log1p(e_n), np.log1p(np.maximum(e_amount, 0)), e_fraud], axis=1)
    out = GraphExport(
        kind=kind_arr,
        ids=ids,
        x=x,
        y=y,
        edge_index=edge_index,
        edge_attr=np.concatenate([attr, attr]).astype(np.float32),
        index={
            (KINDS[k], i): j for j, (k, i) in enumerate(zip(kind_arr.tolist(), ids, strict=True))
        },
    )
    log.info(
        "graph.exported",
        nodes=n_nodes,
        edges=len(src),
        seconds=round(time.perf_counter() - t0, 3),
    )
    return out
