"""fraudring: fraud-ring detection service. This package holds settings, runtime and the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fraudring")
except PackageNotFoundError:  # pragma: no cover - running from a tree that is not installed
    __version__ = "0.0.0"
