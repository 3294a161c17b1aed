"""Opening a graph store from its URL (the only place that knows which backend a URL means)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from fraudring.settings import Settings
from graph.repository import GraphStore
from graph.schemas import RingParams


@contextmanager
def open_store(
    url: str, *, settings: Settings, graph_name: str | None = None
) -> Iterator[GraphStore]:
    """A connected store: falkordb:// or redis:// -> FalkorDB, bolt:// or neo4j:// -> Neo4j."""
    scheme = urlsplit(url).scheme
    name = graph_name or settings.graph_name
    store: GraphStore
    if scheme in {"falkordb", "falkordbs", "redis"}:
        from graph.falkor import FalkorStore

        store = FalkorStore(url, graph_name=name)
    else:
        from graph.neo4j_store import Neo4jStore

        store = Neo4jStore(
            url,
            user=settings.graph_user,
            password=settings.graph_password.get_secret_value(),
            database=None,
            use_gds=settings.graph_gds,
        )
    store.ring_params = RingParams.of(settings)
    try:
        yield store
    finally:
        store.close()
