"""The shifted world: a fraud burst at merchants without history, and new devices, in its last
week only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudring.cli.app import app
from fraudring.errors import InvalidInput
from world.io import read_meta, read_world
from world.shift import SHIFT_DAYS
from world.simulate import START, generate


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("shift")
    for name, shift in (("plain", False), ("shifted", True)):
        generate(
            out=base / name, transactions=30_000, seed=5, days=21, fraud_rate=0.005,
            shift=shift, progress=False,
        )  # fmt: skip
    return base / "plain", base / "shifted"


def _frame(path: Path) -> pd.DataFrame:
    w = read_world(path)
    tx = w.transactions.to_pandas()
    tr = w.truth.to_pandas()
    day = (tx["ts"] - START) // pd.Timedelta(days=1)
    return tx.assign(fraud=tr["is_fraud"].to_numpy(), ring=tr["ring_id"].to_numpy(), day=day)


def test_burst_is_at_merchants_without_earlier_fraud(worlds: tuple[Path, Path]) -> None:
    plain, shifted = _frame(worlds[0]), _frame(worlds[1])
    start = 21 - SHIFT_DAYS
    before = plain[plain["day"] < start]
    assert (shifted[shifted["day"] < start]["fraud"] == before["fraud"]).all()
    burst = shifted[shifted["fraud"] & shifted["ring"].isna()]
    assert len(burst) > 0 and (burst["day"] >= start).all()
    earlier = set(shifted[shifted["fraud"] & (shifted["day"] < start)]["merchant_id"])
    assert not set(burst["merchant_id"]) & earlier
    meta = read_meta(worlds[1])
    assert meta["params"]["shift"]["burst_frauds"] == len(burst)
    assert meta["counts"]["fraud_transactions"] == int(shifted["fraud"].sum())


def test_every_device_is_new_in_the_shifted_week(worlds: tuple[Path, Path]) -> None:
    df = _frame(worlds[1])
    start = 21 - SHIFT_DAYS
    old = set(df[df["day"] < start]["device_id"].dropna())
    new = set(df[df["day"] >= start]["device_id"].dropna())
    assert new and not old & new
    plain = _frame(worlds[0])
    # the same rows use devices (sharing kept), only under other ids
    assert df["device_id"].notna().sum() == plain["device_id"].notna().sum()
    assert np.array_equal(df["user_id"].to_numpy(), plain["user_id"].to_numpy())


def test_a_world_too_short_for_a_shift_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="shift needs a world of at least 14 days"):
        generate(
            out=tmp_path / "w", transactions=5_000, seed=1, days=10, shift=True, progress=False
        )


def test_cli_takes_shift(tmp_path: Path) -> None:
    out = tmp_path / "w"
    res = CliRunner().invoke(
        app,
        ["simulate", "--out", str(out), "--transactions", "5000", "--days", "14", "--shift",
         "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert read_meta(out)["params"]["shift"]["new_devices"] is True
