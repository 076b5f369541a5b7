"""The README stays true: its commands and its configuration table."""

from __future__ import annotations

import re
from pathlib import Path

from ghapp.settings import Settings

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()


def shell_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", README, re.S)]


def test_first_two_commands_run_the_demo_then_the_tests() -> None:
    first, second = shell_blocks()[:2]
    assert first == "python3 -m pip install uv==0.13.9 && python3 -m uv run --locked ghapp demo"
    assert second == (
        "python3 -m pip install uv==0.13.9 && python3 -m uv run --locked --extra test "
        "pytest -n 4 --dist loadfile"
    )


def test_ci_runs_exactly_the_readme_test_command() -> None:
    assert shell_blocks()[1] in CI.splitlines()


def test_configuration_table_lists_every_setting() -> None:
    documented = set(re.findall(r"^\| `(GHAPP_[A-Z_]+)` \|", README, re.M))
    expected = {f"GHAPP_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected


def test_layout_names_every_module_and_package_of_the_source() -> None:
    layout = README.split("## Layout", 1)[1]
    source = ROOT / "src" / "ghapp"
    names = {
        path.name
        for path in source.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and not path.name.startswith("__"))
    }
    missing = sorted(name for name in names if not re.search(rf"\b{re.escape(name)}\b", layout))
    assert missing == [], "the README's Layout section does not name these"
