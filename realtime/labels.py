"""Label records: the API (POST) and the CLI import append them; the workers apply them.

Appending to ``{p}stream:labels`` instead of writing the graph keeps the API free of graph
writes and torch; the workers' ``fraudring.labels.apply`` task updates the graph and rescores.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable, Iterator
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


def read_label_csv(path: Path, *, by: str) -> Iterator[LabelRecord]:
    """Rows ``kind,id,label[,at]`` (header required); a bad row stops with its line number."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        try:
            yield from _rows(path, handle, by=by)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        except csv.Error as exc:
            raise InvalidInput(f"{path}: not a CSV file the reader can parse ({exc})") from None


def _rows(path: Path, handle: TextIO, *, by: str) -> Iterator[LabelRecord]:
    reader = csv.DictReader(handle)
    missing = {"kind", "id", "label"} - set(reader.fieldnames or [])
    if missing:
        raise InvalidInput(f"{path}: header lacks column(s) {', '.join(sorted(missing))}")
    for line, row in enumerate(reader, start=2):
        # a short row leaves its last fields None: they read as empty and are refused
        cell = {k: (row.get(k) or "").strip() for k in ("kind", "id", "label", "at")}
        try:
            yield LabelRecord(
                kind=cell["kind"],  # validated by the model
                id=cell["id"],
                label=cell["label"],
                by=by,
                at=float(cell["at"]) if cell["at"] else time.time(),
            )
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {validation_reason(e['msg'])}"
                for e in exc.errors()
            )
            raise InvalidInput(f"{path}:{line}: {reason}") from None
        except ValueError:
            raise InvalidInput(f"{path}:{line}: at: not a number of seconds") from None
