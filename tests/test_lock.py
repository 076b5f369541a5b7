"""``uv.lock`` and ``pyproject.toml`` agree, and the README installs from the lock.

The README's two commands install exactly what ``uv.lock`` holds. If a dependency is added to
``pyproject.toml`` and the lock is not refreshed, ``uv run --locked`` refuses to start, so a
newcomer would meet the mistake before we did. These tests meet it first.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


Dependency = tuple[str, str, str, str]  # name, extras, specifier, the optional set ("" = runtime)


def declared(pyproject: dict) -> set[Dependency]:
    """Every runtime and optional dependency of the project, as ``pyproject.toml`` says."""
    project = pyproject["project"]
    found = {_dependency(Requirement(line), "") for line in project["dependencies"]}
    for extra, lines in project.get("optional-dependencies", {}).items():
        found |= {_dependency(Requirement(line), extra) for line in lines}
    return found


def locked(lock: dict) -> set[Dependency]:
    """The same, as the lock recorded them when it was resolved."""
    (ghapp,) = [p for p in lock["package"] if p["name"] == "ghapp"]
    found = set()
    for entry in ghapp["metadata"]["requires-dist"]:
        extra = re.fullmatch(r"extra == '([\w-]*)'", entry.get("marker", "extra == ''"))
        assert extra, f"unexpected marker in uv.lock: {entry}"
        requirement = Requirement(
            entry["name"]
            + "["
            + ",".join(entry.get("extras", []))
            + "]"
            + entry.get("specifier", "")
        )
        found.add(_dependency(requirement, extra.group(1)))
    return found


def _dependency(requirement: Requirement, extra: str) -> Dependency:
    name = canonicalize_name(requirement.name)
    return name, ",".join(sorted(requirement.extras)), str(requirement.specifier), extra


def disagreement(project_dir: Path) -> set[Dependency]:
    pyproject = tomllib.loads((project_dir / "pyproject.toml").read_text())
    lock = tomllib.loads((project_dir / "uv.lock").read_text())
    return declared(pyproject) ^ locked(lock)


def uv_lock_check(project_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "uv", "lock", "--check", "--offline", "--directory", project_dir],
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_project(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "src" / "ghapp").mkdir(parents=True)
    (tmp_path / "src" / "ghapp" / "__init__.py").write_text("")
    return tmp_path


def add_dependency(pyproject: Path, requirement: str) -> None:
    text = pyproject.read_text()
    changed = text.replace("dependencies = [\n", f'dependencies = [\n    "{requirement}",\n', 1)
    assert changed != text
    pyproject.write_text(changed)


def test_the_lock_holds_every_declared_dependency_and_nothing_else() -> None:
    assert disagreement(ROOT) == set()


def test_uv_agrees_that_the_lock_is_current() -> None:
    done = uv_lock_check(ROOT)
    assert done.returncode == 0, done.stderr


def test_a_dependency_added_to_pyproject_alone_is_caught(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    add_dependency(project / "pyproject.toml", "six>=1.16")
    assert disagreement(project) == {("six", "", ">=1.16", "")}
    assert uv_lock_check(project).returncode != 0


def test_a_changed_range_is_caught(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"httpx>=0.27"', '"httpx>=0.28"'))
    assert disagreement(project) == {("httpx", "", ">=0.27", ""), ("httpx", "", ">=0.28", "")}


def test_the_readme_installs_the_locked_uv() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (uv,) = [p["version"] for p in lock["package"] if p["name"] == "uv"]
    pins = set(re.findall(r"uv==([0-9.]+)", README))
    assert pins == {uv}
    assert f"uv=={uv}" in (ROOT / ".ci" / "run").read_text()
