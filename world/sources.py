"""Reading a user's CSV or Parquet file for `fraudring load`: every cell as text, rows with
the wrong field count kept aside with their line numbers, repeated column names numbered."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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


#: How the parts of a combined column are joined: an id's with ':', a time's as below.
ID_JOIN = ":"


def combine(table: pa.Table, columns: dict[str, str]) -> pa.Table:
    """The table with a column named `A+B+...` for each field mapped so (where the file holds
    no column of that very name), reading the parts as one: a time of year, month, day and an
    optional time of day (IBM's TabFormer: Year, Month, Day, Time) as an ISO 8601 date-time,
    other times joined by a space, ids by ':' (a card numbered per user: `card=User+Card`)."""
    for field, spec in columns.items():
        parts = spec.split("+")
        if spec in table.column_names or len(parts) < 2:
            continue
        absent = [p for p in parts if p not in table.column_names]
        if absent:
            raise InvalidInput(
                f"--columns {field}={spec}: column(s) {', '.join(absent)} not in the input; "
                f"it has: {', '.join(table.column_names)}"
            )
        cells = [pc.utf8_trim_whitespace(pc.cast(table.column(p), pa.string())) for p in parts]
        if field in ("time", "label_time") and len(parts) in (3, 4):
            joined = _ymd(cells)
        else:
            sep = " " if field in ("time", "label_time") else ID_JOIN
            joined = pc.binary_join_element_wise(*cells, sep)
        table = table.append_column(spec, joined)
    return table


def _ymd(cells: list[pa.ChunkedArray]) -> pa.ChunkedArray:
    """Year, month, day (and a time of day) as `YYYY-MM-DDTHH:MM`; anything else stays as the
    parts joined by spaces, which the time check then refuses."""
    y, m, d = (
        pc.utf8_lpad(c, width=w, padding="0") for c, w in zip(cells[:3], (4, 2, 2), strict=True)
    )
    date = pc.binary_join_element_wise(y, m, d, "-")
    clock = pc.utf8_lpad(cells[3], width=5, padding="0") if len(cells) == 4 else None
    joined = date if clock is None else pc.binary_join_element_wise(date, clock, "T")
    shaped = pc.match_substring_regex(joined, r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$")
    return pc.if_else(shaped, joined, pc.binary_join_element_wise(*cells, " "))
