"""A fresh shallow checkout of a repository for one session, always removed afterwards.

Cloned from ``{GHAPP_GIT_URL}/{owner}/{repo}.git`` with the installation token. The token
travels in git's environment (``GIT_CONFIG_*``: an ``http.extraHeader``), never in the URL
or on the command line, so it lands neither in ``.git/config`` nor in ``ps``. For a PR
item the PR head is fetched (``refs/pull/N/head``), which works for forks too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

GIT_TIMEOUT_S = 300


class CheckoutError(RuntimeError):
    pass


class WorkDir:
    """This process's own folder for checkouts, and the removal of what dead ones left.

    Checkouts are removed when their session ends, but a process killed with ``kill -9``
    (or a machine that lost power) leaves its checkouts behind, each a copy of a repository.
    Every process works in ``<root>/<pid>-<random>/`` and holds an exclusive ``flock`` on a
    file in it for as long as it lives. At start-up, every folder whose lock can be taken
    belongs to no living process and is removed; a live process's folder never is, whoever
    shares the root (several workers on one machine).
    """

    LOCK = ".owner.lock"
    BEING_MADE = ".new-"  # a folder not yet locked: another process's sweep leaves it

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path: Path | None = None
        self._lock: int | None = None

    def open(self) -> Path:
        """This process's folder, appearing under its final name only once it holds its
        locked lock file: a sweep by another process can never take it for a dead one's."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.sweep()
        made = Path(tempfile.mkdtemp(prefix=self.BEING_MADE, dir=self.root))
        fd, unnamed = tempfile.mkstemp(dir=made)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(unnamed, made / self.LOCK)  # the lock file appears already locked
        self._lock = fd
        self.path = self.root / f"{os.getpid()}-{made.name.removeprefix(self.BEING_MADE)}"
        made.rename(self.path)
        return self.path

    def sweep(self) -> list[Path]:
        """Remove the folders of processes that are gone; the folders removed."""
        removed = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or folder == self.path:
                continue
            lock = folder / self.LOCK
            if folder.name.startswith(self.BEING_MADE) and not lock.exists():
                continue  # being made (or empty, left by a process killed right then)
            if _owner_is_gone(lock):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        return removed

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def _owner_is_gone(lock_path: Path) -> bool:
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return True  # never locked: made by a process that died at once
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live process holds it
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return True


def clone_url(git_url: str, full_name: str) -> str:
    return f"{git_url.rstrip('/')}/{full_name}.git"


@contextlib.asynccontextmanager
async def checkout(
    git_url: str,
    full_name: str,
    token: str | None,
    *,
    ref: str | None = None,
    pull_number: int | None = None,
    parent: Path | None = None,
    config_from: str | None = None,
) -> AsyncIterator[Path]:
    """Yield a working tree at ``ref`` (default branch if None) or at the PR's head.

    ``config_from`` (a branch): the head is not trusted, so its Claude Code configuration
    (``.claude/``, ``.mcp.json``, ``CLAUDE.md`` anywhere in the tree) is removed and that
    branch's is put in its place."""
    root = Path(tempfile.mkdtemp(prefix="ghapp-checkout-", dir=parent))
    work = root / full_name.split("/")[-1]
    env = git_environment(token)
    try:
        url = clone_url(git_url, full_name)
        # --template= skips git's sample hooks: a third fewer files to write and delete.
        if pull_number is None:  # one process: the common case, and the fastest
            branch = ["--branch", ref] if ref else []
            clone = ["clone", "--quiet", "--template=", "--depth", "1", *branch, url, str(work)]
            await _git(clone, env, root, token)
        else:  # a PR head is not a branch of the repository: fetch its ref
            await _git(["init", "--quiet", "--template=", str(work)], env, root, token)
            await _git(["remote", "add", "origin", url], env, work, token)
            wanted = f"pull/{pull_number}/head"
            await _git(["fetch", "--quiet", "--depth", "1", "origin", wanted], env, work, token)
            await _git(["checkout", "--quiet", "--detach", "FETCH_HEAD"], env, work, token)
        if config_from is not None:
            await _config_from(config_from, work, env, token)
        yield work
    finally:
        await asyncio.to_thread(shutil.rmtree, root, True)


CONFIG_NAMES = frozenset({".claude", ".mcp.json", "CLAUDE.md", "CLAUDE.local.md"})


def is_config(path: str) -> bool:
    """Is this repository path Claude Code configuration (settings, hooks, commands, MCP
    servers, memory), at any depth?"""
    return any(part in CONFIG_NAMES for part in path.split("/"))


async def _config_from(branch: str, work: Path, env: dict[str, str], token: str | None) -> None:
    await asyncio.to_thread(_remove_config, work)
    await _git(["fetch", "--quiet", "--depth", "1", "origin", branch], env, work, token)
    listed = await _git(["ls-tree", "-r", "--name-only", "FETCH_HEAD"], env, work, token)
    wanted = [path for path in listed.splitlines() if is_config(path)]
    if wanted:
        await _git(["checkout", "FETCH_HEAD", "--", *wanted], env, work, token)


def _remove_config(work: Path) -> None:
    for folder, dirs, files in os.walk(work):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in [*dirs, *files]:
            if name not in CONFIG_NAMES:
                continue
            path = Path(folder) / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        dirs[:] = [d for d in dirs if d not in CONFIG_NAMES]


def git_environment(token: str | None) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", GIT_CONFIG_NOSYSTEM="1")
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    return env


async def _git(args: list[str], env: dict[str, str], cwd: Path, token: str | None) -> str:
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(GIT_TIMEOUT_S):  # not wait_for: it can swallow a cancel
            out, err = await process.communicate()
    except TimeoutError:
        raise CheckoutError(f"git {args[0]} timed out after {GIT_TIMEOUT_S} s") from None
    finally:
        if process.returncode is None:  # timed out or cancelled: never leave git running
            process.kill()
            await asyncio.shield(process.wait())
    if process.returncode != 0:
        message = err.decode("utf-8", "replace").strip()
        if token:
            message = message.replace(token, "****")
        raise CheckoutError(f"git {args[0]} failed: {message[-500:]}")
    return out.decode("utf-8", "replace")


async def branch_exists(git_url: str, full_name: str, token: str | None, branch: str) -> bool:
    """Whether the repository has this branch (a follow-up's may be gone: merged and
    deleted)."""
    env = git_environment(token)
    url = clone_url(git_url, full_name)
    listed = await _git(
        ["ls-remote", "--heads", url, f"refs/heads/{branch}"],
        env,
        Path(tempfile.gettempdir()),
        token,
    )
    return any(line.endswith(f"\trefs/heads/{branch}") for line in listed.splitlines())


async def head_commit(work: Path) -> str:
    """The commit a fresh checkout is at. Read before the session runs: afterwards the
    checkout, ``.git/`` included, is whatever the session left."""
    env = {"PATH": os.environ.get("PATH", ""), "GIT_DIR": str(work / ".git")}
    return (await _git(["rev-parse", "--verify", "HEAD^{commit}"], env, work, None)).strip()
