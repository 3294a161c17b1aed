"""Numeric times in a unit and from an origin (`fraudring load --time-unit --time-origin`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudring.errors import InvalidInput
from tests.support.cli import run_cli
from world.rowcheck import TIME_UNITS, Rules, parse_origin, parse_times

FAR_FUTURE = 1e11  # "now" for the future bound (year 5138), so every drawn time is inside it

PAYSIM = """step,type,amount,nameOrig,nameDest,isFraud
1,PAYMENT,9839.64,C1231006815,M1979787155,0
1,TRANSFER,181.0,C1305486145,C553264065,1
26,CASH_OUT,181.0,C840083671,C38997010,1
743,PAYMENT,11668.14,C2048537720,M1230701703,0
"""
PAYSIM_COLUMNS = "user=nameOrig,merchant=nameDest,amount=amount,time=step,label=isFraud"


@settings(max_examples=80)
@given(
    steps=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=8),
    unit=st.sampled_from(sorted(TIME_UNITS)),
    origin=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1)),
)
def test_a_number_counts_units_from_the_origin_typed_or_written(
    steps: list[int], unit: str, origin: datetime
) -> None:
    start = origin.replace(tzinfo=UTC).timestamp()
    rules = Rules(time_unit=unit, time_origin=start, now=FAR_FUTURE)
    want = [round(start * 1e6) + round(n * TIME_UNITS[unit] * 1e6) for n in steps]
    for column in (pa.chunked_array([steps]), pa.chunked_array([[str(n) for n in steps]])):
        ts, bad, naive = parse_times(column, rules)
        assert ts.tolist() == want
        assert not bad.any() and not naive.any()


def test_without_an_origin_numbers_stay_epoch_seconds_and_dates_still_parse() -> None:
    column = pa.chunked_array([["1767612000", "2026-01-05T11:20:00Z", "soon"]])
    ts, bad, _ = parse_times(column, Rules(now=FAR_FUTURE))
    assert ts[:2].tolist() == [1_767_612_000_000_000, 1_767_612_000_000_000]
    assert bad.tolist() == [False, False, True]


@given(st.text(max_size=30), st.sampled_from([None, "UTC", "Europe/Paris", "Mars/Base"]))
def test_origin_is_an_instant_or_one_clear_error(text: str, zone: str | None) -> None:
    try:
        at: float | str = parse_origin(text, zone)
    except InvalidInput as exc:
        at = exc.message
    assert isinstance(at, float) or at.startswith(("--time-origin: ", "--assume-tz: "))


def test_origin_needs_a_zone_written_or_assumed() -> None:
    assert parse_origin("2026-01-01T00:00:00Z", None) == 1_767_225_600.0
    assert parse_origin("2026-01-01T01:00:00+01:00", None) == 1_767_225_600.0
    assert parse_origin("2026-01-01", "UTC") == 1_767_225_600.0
    for text, zone in (("2026-01-01", None), ("step one", "UTC"), ("2026-01-01", "Mars/Base")):
        with pytest.raises(InvalidInput):
            parse_origin(text, zone)


def test_paysim_steps_load_as_hours_from_the_origin(tmp_path: Path) -> None:
    (tmp_path / "paysim.csv").write_text(PAYSIM)
    run = run_cli(
        "load", "--input", "paysim.csv", "--columns", PAYSIM_COLUMNS, "--out", "w",
        "--time-unit", "h", "--time-origin", "2026-01-01T00:00:00Z", "--no-summary",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "loaded 4 rows" in run.stdout
    got = pd.read_parquet(tmp_path / "w" / "transactions.parquet")
    assert sorted(got["ts"].dt.strftime("%Y-%m-%dT%H:%M")) == [
        "2026-01-01T01:00",
        "2026-01-01T01:00",
        "2026-01-02T02:00",
        "2026-01-31T23:00",
    ]


def test_a_load_that_keeps_no_row_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "paysim.csv").write_text(PAYSIM)
    run = run_cli(
        "load", "--input", "paysim.csv", "--columns", PAYSIM_COLUMNS, "--out", "w", cwd=tmp_path
    )  # steps 1..743 read as epoch seconds fall in 1970
    assert run.returncode == 2
    assert "4 × bad time (a number read as epoch seconds falls before" in run.stdout
    assert "give --time-origin, and --time-unit" in " ".join(run.stdout.split())  # what to do
    assert "nothing was loaded" in run.stderr and "Traceback" not in run.stderr
    run = run_cli(
        "load", "--input", "paysim.csv", "--columns", PAYSIM_COLUMNS, "--out", "w",
        "--time-unit", "hours", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip() == "error: --time-unit: 'hours' is not one of s, ms, min, h, d"
