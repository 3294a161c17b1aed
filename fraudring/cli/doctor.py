"""`fraudring doctor`: which Redis, graph store and models are in use, and whether each answers."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import redis
import typer
from rich.console import Console
from rich.table import Table

from fraudring.registry import ModelRegistry
from fraudring.runtime import services
from fraudring.settings import get_settings

console = Console()


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (
            f":{parts.port}" if parts.port else ""
        )
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def check_redis(url: str) -> tuple[bool, str]:
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        t0 = time.perf_counter()
        client.ping()
        ms = (time.perf_counter() - t0) * 1000
        ver = client.info("server").get("redis_version", "?")
        client.close()
    except redis.RedisError as exc:
        return False, f"unreachable: {exc}"
    return True, f"redis {ver}, ping {ms:.1f} ms"


def check_graph(url: str) -> tuple[bool, str]:
    from graph.service import open_store

    try:
        with open_store(url, settings=get_settings()) as store:
            return True, store.describe()
    except Exception as exc:  # any driver error is a "no" for the doctor
        return False, f"unreachable: {exc}"


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor() -> None:
        """Report the Redis, graph store and models in use, and whether each is reachable."""
        settings = get_settings()
        ok_all = True
        with services(settings) as ep:
            table = Table(title="fraudring doctor")
            for col in ("component", "in use", "status"):
                table.add_column(col)
            origin = "embedded (started for this command)" if ep.embedded else "configured"
            ok, msg = check_redis(ep.redis_url)
            ok_all &= ok
            table.add_row(
                "redis", f"{_redact(ep.redis_url)} ({origin})", ("ok: " if ok else "FAIL: ") + msg
            )
            ok, msg = check_graph(ep.graph_url)
            ok_all &= ok
            table.add_row("graph", _redact(ep.graph_url), ("ok: " if ok else "FAIL: ") + msg)
            reg = ModelRegistry(settings.models_path)
            live = reg.live_version()
            versions = reg.versions()
            table.add_row(
                "models",
                str(settings.models_path),
                f"ok: live {live}, {len(versions)} version(s)"
                if live
                else f"ok: no live model ({len(versions)} version(s)); decisions use rules only",
            )
            console.print(table)
        if not ok_all:
            raise typer.Exit(1)
