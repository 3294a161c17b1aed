"""The CLI's tables for lists people copy ids from."""

from __future__ import annotations

from rich import box
from rich.table import Table


def compact(title: str, *, caption: str | None = None) -> Table:
    """A table without outer edges or padding (header rule only): seven or nine columns then fit
    an 80-column terminal, so the ids the next command takes are printed whole."""
    return Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
