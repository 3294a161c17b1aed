"""Neo4j backend (production), through the official driver."""

from __future__ import annotations

import neo4j


class Neo4jStore:
    backend = "neo4j"

    def __init__(self, url: str, *, user: str, password: str, database: str | None) -> None:
        self._driver = neo4j.GraphDatabase.driver(url, auth=(user, password))
        self.database = database

    def describe(self) -> str:
        info = self._driver.get_server_info()
        records, _, _ = self._driver.execute_query(
            "MATCH (n) RETURN count(n) AS n", database_=self.database
        )
        return f"neo4j {info.agent}, {records[0]['n']} nodes"

    def close(self) -> None:
        self._driver.close()
