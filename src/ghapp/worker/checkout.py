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
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

GIT_TIMEOUT_S = 300


class CheckoutError(RuntimeError):
    pass


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
) -> AsyncIterator[Path]:
    """Yield a working tree at ``ref`` (default branch if None) or at the PR's head."""
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
        yield work
    finally:
        await asyncio.to_thread(shutil.rmtree, root, True)


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
        out, err = await asyncio.wait_for(process.communicate(), GIT_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise CheckoutError(f"git {args[0]} timed out after {GIT_TIMEOUT_S} s") from None
    if process.returncode != 0:
        message = err.decode("utf-8", "replace").strip()
        if token:
            message = message.replace(token, "****")
        raise CheckoutError(f"git {args[0]} failed: {message[-500:]}")
    return out.decode("utf-8", "replace")
