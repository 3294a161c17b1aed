"""Label records: the API (POST) and the CLI import append them; the workers apply them.

Appending to ``{p}stream:labels`` instead of writing the graph keeps the API free of graph
writes and torch; the workers' ``fraudring.labels.apply`` task updates the graph and rescores.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, TextIO

import orjson
import redis
import redis.asyncio
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fraudring.errors import InvalidInput, validation_reason
from realtime.keys import LABELS_STREAM_CAP, Keys
from realtime.schemas import EntityId

LabelKind = Literal["txn", "user", "card", "device", "ip", "merchant"]


class LabelRecord(BaseModel):
    """One record of ``{p}stream:labels`` (field ``d``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LabelKind
    #: Checked as a decision's ids are: an id the graph store cannot take (a NUL ends the
    #: query text) must be refused here, not accepted and then fail in the worker.
    id: EntityId
    label: Literal["fraud", "legitimate"]
    by: EntityId
    at: Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _ids(raw: list[object]) -> list[str]:
    return [i.decode() if isinstance(i, bytes) else str(i) for i in raw]


def publish_labels(client: redis.Redis, keys: Keys, records: Iterable[LabelRecord]) -> list[str]:
    """XADD each record to the labels stream in one pipeline; returns the stream ids."""
    pipe = client.pipeline(transaction=False)
    for rec in records:
        pipe.xadd(
            keys.labels_stream,
            {"d": orjson.dumps(rec.model_dump())},
            maxlen=LABELS_STREAM_CAP,
            approximate=True,
        )
    return _ids(pipe.execute()) if len(pipe) else []


async def publish_labels_async(
    client: redis.asyncio.Redis, keys: Keys, records: Iterable[LabelRecord]
) -> list[str]:
    """The same for the API's asyncio client."""
    pipe = client.pipeline(transaction=False)
    for rec in records:
        pipe.xadd(
            keys.labels_stream,
            {"d": orjson.dumps(rec.model_dump())},
            maxlen=LABELS_STREAM_CAP,
            approximate=True,
        )
    return _ids(await pipe.execute()) if len(pipe) else []


@dataclass(frozen=True)
class LabelRow:
    """A label read from a file, with the line it came from (for reports)."""

    line: int
    record: LabelRecord


def read_label_csv(path: Path, *, by: str) -> list[LabelRow]:
    """Rows ``kind,id,label[,at]`` (header required; `at` ISO 8601 with a zone or epoch
    seconds, now when empty). Every bad row is reported with its line, in one error."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        try:
            rows, errors = _rows(path, handle, by=by)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        except csv.Error as exc:
            raise InvalidInput(f"{path}: not a CSV file the reader can parse ({exc})") from None
    if errors:
        shown = "\n".join(f"{path}:{line}: {reason}" for line, reason in errors[:MAX_REPORTED])
        more = len(errors) - MAX_REPORTED
        tail = f"\n... and {more} more bad row(s)" if more > 0 else ""
        raise InvalidInput(
            f"{shown}{tail}\n{len(errors)} bad row(s); nothing queued",
            detail={"errors": [{"line": line, "reason": r} for line, r in errors]},
        )
    return rows


#: Bad rows listed one per line at most; the rest are counted.
MAX_REPORTED = 50


def parse_at(text: str) -> float:
    """Epoch seconds or an ISO 8601 date-time with a zone (as `fraudring load` takes)."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or value <= 0:
            raise ValueError("at: must be a positive number of seconds or an ISO 8601 time")
        return value
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "at: not epoch seconds or an ISO 8601 date-time (e.g. 2026-11-25T18:00:00Z)"
        ) from None
    if ts.tzinfo is None:
        raise ValueError("at: an ISO 8601 time needs its zone (Z or +01:00)")
    return ts.timestamp()


def _rows(path: Path, handle: TextIO, *, by: str) -> tuple[list[LabelRow], list[tuple[int, str]]]:
    reader = csv.DictReader(handle)
    missing = {"kind", "id", "label"} - set(reader.fieldnames or [])
    if missing:
        raise InvalidInput(f"{path}: header lacks column(s) {', '.join(sorted(missing))}")
    rows: list[LabelRow] = []
    errors: list[tuple[int, str]] = []
    for row in reader:
        line = reader.line_num
        # a short row leaves its last fields None: they read as empty and are refused
        cell = {k: (row.get(k) or "").strip() for k in ("kind", "label", "at")}
        cell["id"] = row.get("id") or ""  # not trimmed: an id with outer spaces is refused
        try:
            at = parse_at(cell["at"]) if cell["at"] else time.time()
            rec = LabelRecord(
                kind=cell["kind"],  # validated by the model
                id=cell["id"],
                label=cell["label"],
                by=by,
                at=at,
            )
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {validation_reason(e['msg'])}"
                for e in exc.errors()
            )
            errors.append((line, reason))
        except ValueError as exc:
            errors.append((line, str(exc)))
        else:
            rows.append(LabelRow(line, rec))
    return rows, errors
