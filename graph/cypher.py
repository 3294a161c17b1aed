"""The primitives a Cypher backend provides (FalkorDB, Neo4j), below the store logic.

The store's helpers (export, evidence, history, rings, ...) take a `CypherBackend`, so they
need only these and the store (`graph.repository.CypherStore`) can build on them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Rows = list[list[Any]]


class CypherBackend:
    """Cypher reads and writes; a backend subclass implements them."""

    backend = "cypher"

    def _read(self, query: str, params: dict[str, Any] | None = None) -> Rows:
        raise NotImplementedError

    def _read_scalars(self, query: str, params: dict[str, Any]) -> Rows:
        """Rows of a query that returns only scalars, where floats may come back as their text
        (callers convert); backends with a cheaper path for such rows override it."""
        return self._read(query, params)

    def _write(self, query: str, params: dict[str, Any] | None = None) -> Rows:
        raise NotImplementedError

    def _write_all(self, statements: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Several writes, in one transaction where the backend has them."""
        raise NotImplementedError

    def _pages(self, var: str, *, page_size: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(predicate on `var`, its parameters) covering all nodes, one page at a time."""
        raise NotImplementedError

    def in_db_components(self) -> bool:
        """Whether full ring detection takes its components from the database (`graph.gds`)."""
        return False

    #: Concurrent read queries for scans (export, full ring detection).
    read_parallelism = 1
    #: Whether `node_key` is an integer (FalkorDB id) or a string (Neo4j elementId).
    numeric_keys = False

    #: Cypher function giving a node's internal key (`id` / `elementId`), a backend constant.
    key_function = "id"

    def node_key(self, var: str) -> str:
        """Cypher expression of the internal key of node `var` (joins export pages, hops)."""
        return f"{self.key_function}({var})"

    def _columns(
        self,
        match: str,
        exprs: Sequence[str],
        params: dict[str, Any],
        *,
        strings: Sequence[str] = (),
    ) -> tuple[list[npt.NDArray[np.float64]], list[list[str]]]:
        """Numeric columns (nulls as NaN) and string columns of one MATCH, row-aligned."""
        rows = self._read(match + " RETURN " + ", ".join([*exprs, *strings]), params)
        k = len(exprs)
        nums = np.array(
            [[np.nan if v is None else float(v) for v in row[:k]] for row in rows],
            dtype=np.float64,
        ).reshape(len(rows), k)
        strs = [[row[k + j] for row in rows] for j in range(len(strings))]
        return [nums[:, i] for i in range(k)], strs

    def ensure_schema(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _prepare(self, query: str, params: dict[str, Any]) -> Any:
        """Whatever can be done for a write before sending it (FalkorDB: encode parameters)."""
        return (query, params)

    def _send(self, prepared: Any) -> Rows:
        query, params = prepared
        return self._write(query, params)
