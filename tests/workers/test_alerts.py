"""The alert webhook: its payload, and the HMAC signature a receiver checks (docs/alerts.md)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from fraudring.settings import Settings, SettingsError, load_settings
from realtime.keys import Keys
from workers import alerts
from workers.schemas import Alert

SECRET = "a-secret-shared-with-the-receiver"


@given(body=st.binary(max_size=300), secret=st.binary(min_size=1, max_size=40))
def test_a_signature_verifies_only_its_body_secret_and_time(body: bytes, secret: bytes) -> None:
    now = 1_800_000_000
    header = alerts.sign(secret, body, at=now)
    assert alerts.verify(secret, body, header, now=now + 10)
    assert not alerts.verify(secret, body + b" ", header, now=now)
    assert not alerts.verify(secret + b"x", body, header, now=now)
    assert not alerts.verify(secret, body, header, now=now + alerts.SIGNATURE_TOLERANCE_S + 1)
    forged_time = header.replace(f"t={now}", f"t={now + 60}")
    assert not alerts.verify(secret, body, forged_time, now=now + 60)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1800000000", "garbage"])
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    assert not alerts.verify(b"s", b"{}", header, now=1_800_000_000)


def test_the_default_secret_is_refused_outside_dev_when_a_webhook_is_set() -> None:
    url = "https://cases.example/hook"
    keys: dict[str, Any] = {"api_keys": {}}
    for env in ("test", "prod"):
        with pytest.raises(SettingsError, match="FRAUDRING_ALERT_WEBHOOK_SECRET"):
            load_settings(env=env, alert_webhook_url=url, **keys)
        with pytest.raises(SettingsError, match="at least 16 characters"):
            load_settings(env=env, alert_webhook_url=url, alert_webhook_secret="short", **keys)
        load_settings(env=env, alert_webhook_url=url, alert_webhook_secret=SECRET, **keys)
        load_settings(env=env, **keys)  # no webhook: no secret needed
    load_settings(env="dev", alert_webhook_url=url)


Received = list[tuple[dict[str, str], bytes]]


class _Server(http.server.ThreadingHTTPServer):
    received: Received


class _Receiver(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A real HTTP receiver on a free port, recording each POST's headers and body."""
    server = _Server(("127.0.0.1", 0), _Receiver)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", server.received
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_posts_the_documented_payload_signed(
    make_settings: Callable[..., Settings],
    redis_client: redis.Redis,
    receiver: tuple[str, Received],
) -> None:
    url, received = receiver
    s = make_settings(alert_webhook_url=url, alert_webhook_secret=SECRET)
    keys = Keys(s.redis_prefix)
    alert_id = alerts.publish(
        redis_client,
        keys,
        kind="new_ring",
        severity="high",
        ring_id="r-1",
        evidence={"size": 9, "members": ["u1", "u2"]},
        dedupe="ring_new:r-1",
    )
    assert alert_id is not None
    assert alerts.post_webhook(redis_client, keys, s, alert_id) == 204
    [(headers, body)] = received
    assert headers["content-type"] == "application/json"
    assert headers[alerts.ALERT_ID_HEADER.lower()] == alert_id
    signature = headers[alerts.SIGNATURE_HEADER.lower()]
    assert alerts.verify(SECRET.encode(), body, signature, now=time.time())
    assert not alerts.verify(b"another-secret-of-16+", body, signature, now=time.time())
    payload = orjson.loads(body)
    assert set(payload) == {"id", "kind", "severity", "ring_id", "evidence", "at"}
    alert = Alert.model_validate(payload)
    assert (alert.id, alert.kind, alert.ring_id, alert.evidence["size"]) == (
        alert_id, "new_ring", "r-1", 9,
    )  # fmt: skip
