"""The CLI's own behaviour: reaching the demo's data, and one clear line for bad input."""

from __future__ import annotations

from pathlib import Path

from fraudring.cli.app import hoist_demo_flag
from fraudring.cli.demo.namespace import DEMO_GRAPH, DEMO_PREFIX
from tests.support.cli import run_cli


def test_demo_flag_after_the_command_is_the_root_flag() -> None:
    assert hoist_demo_flag(["fraudring", "rings", "--demo", "-n", "5"]) == [
        "fraudring", "--demo", "rings", "-n", "5",
    ]  # fmt: skip
    assert hoist_demo_flag(["fraudring", "rings"]) == ["fraudring", "rings"]
    assert hoist_demo_flag(["fraudring", "x", "--", "--demo"]) == ["fraudring", "x", "--", "--demo"]


def test_demo_flag_points_a_command_at_the_demo_namespace(tmp_path: Path) -> None:
    """`fraudring models list --demo` reads the models the demo trained under var/demo."""
    out = run_cli("models", "list", "--demo", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "models in var/demo/data/models" in out.stdout
    plain = run_cli("models", "list", cwd=tmp_path)
    assert plain.returncode == 0 and "models in var/models" in plain.stdout


def test_the_demo_namespace_is_apart_from_the_default() -> None:
    from fraudring.settings import load_settings

    default = load_settings()
    assert (default.redis_prefix, default.graph_name) != (DEMO_PREFIX, DEMO_GRAPH)


def test_rules_check_prints_one_error_per_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: a, when: 'amount > 1', action: explode}\n"
        "  - {name: b, when: 'nope >', action: decline}\n"
        "  - {name: c, when: 'amount > 5', action: review}\n"
        "  - {name: c, when: 'amount > 6', action: review}\n"
    )
    out = run_cli("rules", "check", str(rules))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 3, out.stderr
    assert all(line.startswith(f"error: {rules}: rule ") for line in lines), lines
    assert "explode" in lines[0] and "rule 'b': when:" in lines[1]
    assert "rule 'c': duplicate name" in lines[2]
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - {name: a, when: 'amount > 1', action: review}\n")
    ok = run_cli("rules", "check", str(good))
    assert ok.returncode == 0 and "1 rule(s)" in ok.stdout


def test_bench_figures_keep_bracketed_names() -> None:
    """Before: `[vel]` and `[decision]` were read as console markup and vanished, so bench
    scale printed five rows all named `redis_bytes_per_decision`."""
    from rich.console import Console

    from fraudring.cli.bench import figures_table

    console = Console(record=True, width=200)
    console.print(
        figures_table("scale", {"bytes[vel]": 13.2, "bytes[decision]": 104.0, "x": "[y]"})
    )
    text = console.export_text()
    assert "bytes[vel]" in text and "bytes[decision]" in text and "[y]" in text
