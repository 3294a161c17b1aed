"""FalkorDB backend (the embedded default)."""

from __future__ import annotations

from urllib.parse import urlsplit

import falkordb


class FalkorStore:
    backend = "falkordb"

    def __init__(self, url: str, *, graph_name: str) -> None:
        parts = urlsplit(url)
        self._db = falkordb.FalkorDB(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            username=parts.username,
            password=parts.password,
            ssl=parts.scheme == "falkordbs",
            socket_timeout=30,
        )
        self.graph_name = graph_name
        self.graph = self._db.select_graph(graph_name)

    def describe(self) -> str:
        self._db.connection.ping()
        if self.graph_name not in self._db.list_graphs():
            return f"falkordb graph {self.graph_name!r} (empty)"
        res = self.graph.ro_query("MATCH (n) RETURN count(n)")
        return f"falkordb graph {self.graph_name!r}, {res.result_set[0][0]} nodes"

    def close(self) -> None:
        self._db.connection.close()
