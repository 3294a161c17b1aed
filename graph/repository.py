"""The repository interface both graph backends implement."""

from __future__ import annotations

from typing import Protocol


class GraphStore(Protocol):
    backend: str

    def describe(self) -> str:
        """One line: backend, server version and graph size, for `fraudring doctor`."""
        ...

    def close(self) -> None: ...
