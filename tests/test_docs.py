"""The README stays a manual, and every setting can be found in it or the pages it links."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_and_the_readme_stays_a_manual() -> None:
    """A setting nobody can find is a setting nobody sets (the demo's graph name was one)."""
    from fraudring.settings import Settings

    readme = (ROOT / "README.md").read_text()
    text = readme + "".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    missing = [
        f"FRAUDRING_{name.upper()}"
        for name in Settings.model_fields
        if f"FRAUDRING_{name.upper()}" not in text
    ]
    assert not missing, f"settings in neither README.md nor docs/: {missing}"
    assert len(readme.splitlines()) <= 260
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), link
