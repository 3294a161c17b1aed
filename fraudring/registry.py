"""Model registry on disk, shared by the trainer (writes) and the API (reads, never torch).

Layout under the model directory::

    <version>/manifest.json   version, created_at, kind, features, thresholds, metrics, data_window
    <version>/...             artifacts (xgb.json, gcn.pt, ...), named in manifest["artifacts"]
    LIVE                      the promoted version (replaced atomically)
    HISTORY                   one line per promote/rollback, newest last

Versions are UTC timestamps (``20261125T174700Z``), so sorting by name sorts by age.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudring.errors import Conflict, NotFound

MANIFEST = "manifest.json"


class ModelNotFound(NotFound):
    code = "model_not_found"


class PromotionRefused(Conflict):
    code = "promotion_refused"


def new_version(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- reading -------------------------------------------------------------------------------
    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST).is_file())

    def live_version(self) -> str | None:
        try:
            v = (self.root / "LIVE").read_text().strip()
        except FileNotFoundError:
            return None
        return v if v and (self.root / v / MANIFEST).is_file() else None

    def manifest(self, version: str) -> dict[str, Any]:
        path = self.root / version / MANIFEST
        if "/" in version or ".." in version or not path.is_file():
            raise ModelNotFound(f"model version {version!r} not found")
        data: dict[str, Any] = json.loads(path.read_text())
        data["live"] = version == self.live_version()
        return data

    def artifact(self, version: str, name: str) -> Path:
        path = self.root / version / name
        if not path.is_file():
            raise ModelNotFound(f"artifact {name!r} of model {version!r} not found")
        return path

    # -- writing -------------------------------------------------------------------------------
    def register(
        self,
        *,
        artifacts: Mapping[str, Path],
        manifest: Mapping[str, Any],
        version: str | None = None,
    ) -> str:
        """Copy artifacts into a new version directory and write its manifest last."""
        version = version or new_version()
        target = self.root / version
        if target.exists():
            raise PromotionRefused(f"model version {version!r} already exists")
        staging = Path(
            tempfile.mkdtemp(dir=self.root if self.root.exists() else None, prefix=".staging-")
        )
        for name, src in artifacts.items():
            shutil.copyfile(src, staging / name)
        body = {
            **manifest,
            "version": version,
            "created_at": manifest.get("created_at", datetime.now(UTC).isoformat()),
            "artifacts": sorted(artifacts),
        }
        (staging / MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=True, default=str))
        self.root.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
        return version

    def _set_live(self, version: str, *, action: str, reason: str) -> None:
        _atomic_write(self.root / "LIVE", version + "\n")
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "action": action,
            "version": version,
            "reason": reason,
        }
        with (self.root / "HISTORY").open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def promote(
        self, version: str, *, metric: str, margin: float = 0.0, force: bool = False
    ) -> bool:
        """Make `version` live if its validation `metric` beats the live one by `margin`."""
        candidate = self.manifest(version)
        live = self.live_version()
        if live is not None and not force:
            cur = self.manifest(live).get("metrics", {}).get(metric)
            new = candidate.get("metrics", {}).get(metric)
            if new is None:
                raise PromotionRefused(f"candidate {version} has no metric {metric!r}")
            if cur is not None and not new > cur + margin:
                return False
        self._set_live(version, action="promote", reason=f"{metric} beats {live or 'nothing'}")
        return True

    def rollback(self, version: str | None = None) -> str:
        """Make an earlier version live: the given one, or the one live before the current."""
        if version is None:
            history = self.history()
            live = self.live_version()
            earlier = [h["version"] for h in history if h["version"] != live]
            if not earlier:
                raise ModelNotFound("no earlier live version to roll back to")
            version = earlier[-1]
        self.manifest(version)
        self._set_live(version, action="rollback", reason="requested")
        return version

    def history(self) -> list[dict[str, Any]]:
        try:
            lines = (self.root / "HISTORY").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]
