"""Local bare repositories standing in for GitHub's git server (``GHAPP_GIT_URL=file://…``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

_IDENTITY = {
    "GIT_AUTHOR_NAME": "ghapp",
    "GIT_AUTHOR_EMAIL": "ghapp@example.com",
    "GIT_COMMITTER_NAME": "ghapp",
    "GIT_COMMITTER_EMAIL": "ghapp@example.com",
}


def bare_repository(
    root: Path,
    full_name: str,
    *,
    branch: str = "master",
    files: Mapping[str, str] | None = None,
    pull_requests: Mapping[int, Mapping[str, str]] | None = None,
) -> str:
    """Create ``root/remote/{full_name}.git`` (once) and return the ``GHAPP_GIT_URL`` for it.

    ``files`` make the first commit on ``branch``; each pull request's files make a commit
    on top, pushed as ``refs/pull/N/head`` the way GitHub exposes PR heads.
    """
    remote = root / "remote"
    bare = remote / f"{full_name}.git"
    if bare.exists():
        return f"file://{remote}"
    seed = root / f"seed-{full_name.replace('/', '-')}"
    env = {**os.environ, **_IDENTITY, "HOME": str(root)}
    bare.mkdir(parents=True)
    _git(["init", "-q", "--bare", f"--initial-branch={branch}", str(bare)], root, env)
    _git(["init", "-q", f"--initial-branch={branch}", str(seed)], root, env)
    _commit(seed, files or {"README.md": f"# {full_name.split('/')[-1]}\n"}, "init", env)
    _git(["push", "-q", str(bare), f"HEAD:{branch}"], seed, env)
    for number, changes in (pull_requests or {}).items():
        _commit(seed, changes, f"pull request {number}", env)
        _git(["push", "-q", str(bare), f"HEAD:refs/pull/{number}/head"], seed, env)
    return f"file://{remote}"


def _commit(work: Path, files: Mapping[str, str], message: str, env: dict[str, str]) -> None:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    _git(["add", "."], work, env)
    _git(["commit", "-qm", message], work, env)


def _git(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)  # noqa: S603, S607
