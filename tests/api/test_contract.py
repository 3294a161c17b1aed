"""The API against its own OpenAPI schema, fuzzed by schemathesis over real HTTP.

A `fraudring serve` process on real Redis and FalkorDB (a small ring in the graph) answers every
operation with generated valid and invalid input. It must never answer 5xx, and every answer
must have a documented status, content type and body shape (a generated client parses them).
"Schema-valid input accepted" is left out: the schema cannot say "printable in Python's sense"
or "not in the future by the server's clock", which the API checks and refuses with a 422.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import falkordb
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from fraudring.settings import hash_api_key, load_settings
from graph.schemas import TxnRecord
from graph.service import open_store
from realtime import ops
from tests.support.realtime import serving

KEY = "k-all"


@pytest.fixture(scope="module")
def live_api(
    redis_url: str, falkor_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    prefix, graph = f"test-{uuid.uuid4().hex[:10]}:", f"test_{uuid.uuid4().hex[:10]}"
    data = tmp_path_factory.mktemp("contract")
    env = {
        **os.environ,
        "FRAUDRING_REDIS_URL": redis_url,
        "FRAUDRING_GRAPH_URL": falkor_url,
        "FRAUDRING_GRAPH_NAME": graph,
        "FRAUDRING_REDIS_PREFIX": prefix,
        "FRAUDRING_DATA_DIR": str(data),
        "FRAUDRING_ENV": "test",
        "FRAUDRING_API_KEYS": f'{{"{hash_api_key(KEY)}": "score,investigate,admin"}}',
    }
    s = load_settings(
        env="test", graph_url=falkor_url, graph_name=graph, data_dir=data, api_keys={}
    )
    with open_store(falkor_url, settings=s) as store:
        store.ensure_schema()
        store.ingest(
            [
                TxnRecord(f"t{i}", 1.75e9 + i, u, f"c-{u}", "dA", None, "m1", 20.0)
                for i, u in enumerate(("a1", "a2", "a3"))
            ]
        )
        store.detect_rings()
    try:
        with serving(env) as base:
            yield base
    finally:
        client = redis.Redis.from_url(redis_url)
        ops.delete_prefix(client, prefix)
        client.close()
        db = falkordb.FalkorDB.from_url(falkor_url.replace("falkordb://", "redis://"))
        db.select_graph(graph).delete()


def _fuzz(case: Any) -> None:
    case.call_and_validate(
        headers={"X-API-Key": KEY}, excluded_checks=[positive_data_acceptance], timeout=30
    )


def test_every_operation_keeps_its_contract(live_api: str) -> None:
    """Each operation's own strategy (schemathesis's pytest plugin does not load a schema
    from a fixture under this pytest)."""
    api = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    results = list(api.get_all_operations())
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) == len(results) >= 14, "the schema has operations it cannot read"
    for op in operations:
        run = settings(
            max_examples=30,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )(given(case=op.as_strategy())(_fuzz))
        try:
            run()
        except Exception as exc:
            raise AssertionError(f"{op.label}: {exc}") from exc


def test_the_contract_test_sees_a_broken_answer(live_api: str) -> None:
    """The fuzzer's checks do fail on a 500 (so the test above can fail)."""
    sch = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    op = sch["/v1/rings/{ring_id}"]["GET"]
    case = op.Case(path_parameters={"ring_id": "x"})
    resp = case.call(headers={"X-API-Key": KEY})
    assert resp.status_code == 404
    resp.status_code = 500
    with pytest.raises(FailureGroup) as failures:
        case.validate_response(resp)
    assert any(isinstance(f, ServerError) for f in failures.value.exceptions)
