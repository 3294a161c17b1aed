"""Redis stream ids (`MS-SEQ`) as comparable pairs: the decision stream's replay point is kept by
the graph store, compared and advanced by the workers, and read by the CLI and benchmarks."""

from __future__ import annotations

from fraudring.errors import InvalidInput


def parse(stream_id: str | bytes) -> tuple[int, int]:
    """`MS-SEQ` (or `MS`) as its two integers; anything else is refused with a clear error."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, sep, seq = text.partition("-")
    if not (ms.isdigit() and (not sep or seq.isdigit())):
        raise InvalidInput(f"stream id: expected MS-SEQ, got {text!r}")
    return int(ms), int(seq) if sep else 0


def after(stream_id: str | bytes) -> str:
    """The smallest id greater than `stream_id`."""
    ms, seq = parse(stream_id)
    return f"{ms}-{seq + 1}"
