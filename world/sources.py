"""Reading a user's CSV or Parquet file for `fraudring load`: every cell as text, rows with
the wrong field count kept aside with their line numbers, repeated column names numbered."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fraudring.errors import InvalidInput
from world.io import parquet_errors


def unique_names(names: list[str]) -> list[str]:
    """Column names with each repeat numbered as pandas reads it (`Account`, `Account.1`): a
    file may name two columns alike (IBM's AML data: payer and payee `Account`)."""
    originals, taken, out = set(names), set(), []
    for name in names:
        new, k = name, 0
        while new in taken or (k and new in originals):
            k += 1
            new = f"{name}.{k}"
        taken.add(new)
        out.append(new)
    return out


def read_source(src: Path) -> tuple[pa.Table, np.ndarray, list[tuple[int, str]]]:
    """The file's table (repeated column names numbered, `unique_names`), each kept row's
    number, and CSV rows with the wrong field count."""
    table, rows, bad = _read_source(src)
    return table.rename_columns(unique_names(table.column_names)), rows, bad


def _read_source(src: Path) -> tuple[pa.Table, np.ndarray, list[tuple[int, str]]]:
    if not src.is_file():
        raise InvalidInput(f"input file {src} does not exist")
    if src.suffix.lower() in {".parquet", ".pq"}:
        with parquet_errors(src):
            table = pq.read_table(src)
        return table, np.arange(1, table.num_rows + 1), []
    try:
        with src.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{src} is not a readable CSV file (UTF-8 text): {exc}") from None
    if not header:
        raise InvalidInput(f"{src} is empty: a CSV file needs a header line")
    bad: list[tuple[int, str]] = []

    def on_bad(row: Any) -> str:
        bad.append(
            (int(row.number), f"expected {row.expected_columns} fields, got {row.actual_columns}")
        )
        return "skip"

    try:
        table = pacsv.read_csv(
            src,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())),
        )
    except pa.ArrowInvalid as exc:
        raise InvalidInput(f"{src} is not a readable CSV file: {exc}") from exc
    lines = np.setdiff1d(np.arange(2, 2 + table.num_rows + len(bad)), [b[0] for b in bad])
    return table, lines, bad
