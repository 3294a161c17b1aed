"""Benchmarks behind `fraudring bench NAME`: each prints its figures and returns them."""

from __future__ import annotations

from fraudring.errors import FraudringError


class BenchError(FraudringError):
    """A benchmark that cannot run or did not finish: the CLI prints the reason, no traceback."""

    code = "bench_failed"
