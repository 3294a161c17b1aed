"""Label records: the API (POST) and the CLI import append them; the workers apply them.

Appending to ``{p}stream:labels`` instead of writing the graph keeps the API free of graph
writes and torch; the workers' ``fraudring.labels.apply`` task updates the graph and rescores.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Literal

import orjson
import redis
import redis.asyncio
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from fraudring.errors import InvalidInput
from realtime.keys import Keys

LabelKind = Literal["txn", "user", "card", "device", "ip", "merchant"]


class LabelRecord(BaseModel):
    """One record of ``{p}stream:labels`` (field ``d``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LabelKind
    id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    label: Literal["fraud", "legitimate"]
    by: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    at: Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _ids(raw: list[object]) -> list[str]:
    return [i.decode() if isinstance(i, bytes) else str(i) for i in raw]


def publish_labels(client: redis.Redis, keys: Keys, records: Iterable[LabelRecord]) -> list[str]:
    """XADD each record to the labels stream in one pipeline; returns the stream ids."""
    pipe = client.pipeline(transaction=False)
    for rec in records:
        pipe.xadd(keys.labels_stream, {"d": orjson.dumps(rec.model_dump())})
    return _ids(pipe.execute()) if len(pipe) else []


async def publish_labels_async(
    client: redis.asyncio.Redis, keys: Keys, records: Iterable[LabelRecord]
) -> list[str]:
    """The same for the API's asyncio client."""
    pipe = client.pipeline(transaction=False)
    for rec in records:
        pipe.xadd(keys.labels_stream, {"d": orjson.dumps(rec.model_dump())})
    return _ids(await pipe.execute()) if len(pipe) else []


def read_label_csv(path: Path, *, by: str) -> Iterator[LabelRecord]:
    """Rows ``kind,id,label[,at]`` (header required); a bad row stops with its line number."""
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = {"kind", "id", "label"} - set(reader.fieldnames or [])
        if missing:
            raise InvalidInput(f"{path}: header lacks column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            at = row.get("at") or ""
            try:
                yield LabelRecord(
                    kind=row["kind"].strip(),
                    id=row["id"].strip(),
                    label=row["label"].strip(),
                    by=by,
                    at=float(at) if at.strip() else time.time(),
                )
            except (ValidationError, ValueError) as exc:
                reason = (
                    "; ".join(
                        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                    )
                    if isinstance(exc, ValidationError)
                    else str(exc)
                )
                raise InvalidInput(f"{path}:{line}: {reason}") from None
