"""`fraudring serve`, `fraudring apikey new`, `fraudring rules check`: running the decision API."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from fraudring.errors import InvalidInput
from fraudring.settings import SCOPES, get_settings, hash_api_key

console = Console()

APP_FACTORY = "api.app:create_app"


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
        workers: Annotated[int, typer.Option(help="Uvicorn worker processes.")] = 1,
    ) -> None:
        """Start the decision API (embedded Redis/FalkorDB when none is configured)."""
        import uvicorn

        from fraudring.runtime import services

        if workers < 1:
            raise InvalidInput("--workers must be at least 1")
        settings = get_settings()
        with services(settings) as ep:
            if workers > 1:
                # Each worker writes its metrics here; /metrics adds them up.
                metrics_dir = settings.metrics_dir or settings.data_dir / "metrics"
                shutil.rmtree(metrics_dir, ignore_errors=True)
                metrics_dir.mkdir(parents=True, exist_ok=True)
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
            get_settings.cache_clear()  # the app (same process with 1 worker) sees the URLs
            # One request, one core: XGBoost's OpenMP pool would only add contention.
            os.environ.setdefault("OMP_NUM_THREADS", "1")
            origin = "embedded" if ep.embedded else "configured"
            console.print(
                f"fraudring API on http://{host}:{port} ({workers} worker(s)); "
                f"redis {ep.redis_url} ({origin}); docs at /docs"
            )
            uvicorn.run(
                APP_FACTORY,
                factory=True,
                host=host,
                port=port,
                workers=workers,
                loop="uvloop",
                http="httptools",
                access_log=False,
                log_level="warning",
                timeout_graceful_shutdown=10,  # a SIGTERM'd API exits in bounded time
            )

    apikey = typer.Typer(help="API keys.", no_args_is_help=True)
    app.add_typer(apikey, name="apikey")

    @apikey.command("new")
    def apikey_new(
        scopes: Annotated[
            str, typer.Option(help="Comma-separated scopes: score, investigate, admin.")
        ] = "score",
        name: Annotated[
            str, typer.Option(help="Who the key speaks for in labels, actions and cases.")
        ] = "",
    ) -> None:
        """Make a new API key; prints the key (once) and the hash to put in FRAUDRING_API_KEYS."""
        import json
        import secrets

        wanted = sorted({s.strip() for s in scopes.split(",") if s.strip()})
        unknown = set(wanted) - SCOPES
        if not wanted or unknown:
            raise InvalidInput(
                f"--scopes: unknown {sorted(unknown) or 'none given'}; use {sorted(SCOPES)}"
            )
        key = "fr_" + secrets.token_urlsafe(32)
        digest = hash_api_key(key)
        # Plain echo: rich would wrap the key and the JSON, breaking copy and paste.
        typer.echo(f"key:    {key}")
        typer.echo(f"sha256: {digest}")
        typer.echo(f"scopes: {','.join(wanted)}")
        if name and not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise InvalidInput("--name: letters, digits, '-', '_' and '.' only")
        value = ",".join(wanted)
        entry = json.dumps({digest: f"{name}:{value}" if name else value})
        typer.echo(f"FRAUDRING_API_KEYS='{entry}'  (merge into the JSON object you already have)")

    rules = typer.Typer(help="Decision rules.", no_args_is_help=True)
    app.add_typer(rules, name="rules")

    @rules.command("check")
    def rules_check(
        path: Annotated[Path, typer.Argument(help="A rules YAML file.")],
    ) -> None:
        """Parse a rules file as the API would; print its rules, or the errors (exit 2)."""
        from realtime.rules import RulesError, load_rules

        try:
            ruleset = load_rules(path)
        except RulesError as exc:
            errors = exc.detail.get("errors")
            if not errors:
                raise  # one error: main() prints it
            err = Console(stderr=True, soft_wrap=True)
            for message in errors:  # one per line, each naming the file
                err.print(f"[red]error:[/red] {path}: {escape(message)}", highlight=False)
            raise typer.Exit(2) from None
        for r in ruleset.rules:
            extra = f" ({r.score:+g})" if r.score is not None else ""
            typer.echo(f"ok  {r.name}: when {r.when} -> {r.action}{extra}")
        typer.echo(f"{len(ruleset.rules)} rule(s) in {path}")
