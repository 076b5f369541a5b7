"""The README stays true: its commands and its configuration table."""

from __future__ import annotations

import re
from pathlib import Path

from ghapp.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()
CI = (Path(__file__).parent.parent / ".ci" / "run").read_text()


def shell_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", README, re.S)]


def test_first_two_commands_run_the_demo_then_the_tests() -> None:
    first, second = shell_blocks()[:2]
    assert first == "python3 -m pip install uv==0.13.9 && python3 -m uv run --locked ghapp demo"
    assert second == (
        "python3 -m pip install uv==0.13.9 && python3 -m uv run --locked --extra test pytest"
    )


def test_ci_runs_exactly_the_readme_test_command() -> None:
    assert shell_blocks()[1] in CI.splitlines()


def test_configuration_table_lists_every_setting() -> None:
    documented = set(re.findall(r"^\| `(GHAPP_[A-Z_]+)` \|", README, re.M))
    expected = {f"GHAPP_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected
