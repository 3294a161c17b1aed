"""API keys carry a name (who labels and acts); scopes parse with or without it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fraudring.cli import app
from fraudring.settings import SettingsError, hash_api_key, load_settings


def test_names_and_scopes() -> None:
    s = load_settings(
        env="test",
        api_keys={hash_api_key("a"): "ines:investigate,admin", hash_api_key("b"): "score"},
    )
    assert s.scopes_for("a") == frozenset({"investigate", "admin"}) and s.key_name("a") == "ines"
    assert s.scopes_for("b") == frozenset({"score"})
    assert s.key_name("b") == f"key-{hash_api_key('b')[:8]}"
    assert load_settings(env="dev").key_name("dev-key") == "dev"
    with pytest.raises(SettingsError, match="unknown scopes"):
        load_settings(env="test", api_keys={hash_api_key("c"): "ines:fly"})


def test_apikey_new_prints_the_named_entry() -> None:
    res = CliRunner().invoke(app, ["apikey", "new", "--scopes", "investigate", "--name", "ines"])
    assert res.exit_code == 0, res.output
    assert ': "ines:investigate"}' in res.output
    bad = CliRunner().invoke(app, ["apikey", "new", "--name", "a b"])
    assert bad.exit_code != 0
