"""A FalkorDB server that answers BUSY (preparing a snapshot's fork, or running a long script)
has not run the write: the store sends it again once the server is free, instead of failing a
bulk load half-way (a 10M-transaction load once stopped at 4.3M on an AOF rewrite's fork)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis

from fraudring.runtime import EmbeddedServer
from graph.falkor import FalkorStore
from graph.schemas import TxnRecord

#: a script that keeps the server busy for 1.5 s (Redis answers BUSY to everything meanwhile)
BUSY_SCRIPT = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
while true do
  local n = redis.call('TIME')
  if n[1] * 1000000 + n[2] - start > 1500000 then return 1 end
end
"""


def test_a_write_waits_out_a_busy_server(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "server").start()
    try:
        admin = redis.Redis.from_url(server.url)
        admin.config_set("busy-reply-threshold", 100)
        store = FalkorStore(server.graph_url, graph_name="busy")
        store.ensure_schema()
        busy = threading.Thread(
            target=lambda: redis.Redis.from_url(server.url).eval(BUSY_SCRIPT, 0)
        )
        busy.start()
        time.sleep(0.4)  # past the threshold: the server now answers BUSY
        with pytest.raises(redis.exceptions.ResponseError, match=r"^BUSY "):
            admin.ping()  # the server is busy, or the test proves nothing
        t0 = time.monotonic()
        record = TxnRecord(txn_id="t1", ts=1_780_000_000.0, user_id="u1", card_id="c1",
                           device_id=None, ip=None, merchant_id="m1", amount=5.0)  # fmt: skip
        assert store.ingest([record]).ingested == 1
        assert time.monotonic() - t0 > 0.5  # it waited for the script to end
        busy.join(timeout=10)
        assert store.ingest([record]).ingested == 0  # written once
        store.close()
    finally:
        server.stop()
