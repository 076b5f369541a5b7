"""Checkouts come from a local bare repository (GHAPP_GIT_URL=file://…) and always go away."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ghapp.worker.checkout import CheckoutError, checkout, git_environment


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "PATH": "/usr/bin:/bin",
            "HOME": str(cwd),
        },
    ).stdout


@pytest.fixture
def remote(tmp_path: Path) -> str:
    """file://…/octo/hello.git with main (two commits) and a PR head at refs/pull/5/head."""
    base = tmp_path / "remote"
    bare = base / "octo" / "hello.git"
    bare.mkdir(parents=True)
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)
    work = tmp_path / "work"
    git("clone", "--quiet", str(bare), str(work), cwd=tmp_path)
    (work / "README.md").write_text("one\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "one", cwd=work)
    (work / "README.md").write_text("two\n")
    git("commit", "--quiet", "-am", "two", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    git("checkout", "--quiet", "-b", "feature", cwd=work)
    (work / "feature.txt").write_text("from a fork\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "feature", cwd=work)
    git("push", "--quiet", "origin", "HEAD:refs/pull/5/head", cwd=work)
    return f"file://{base}"


async def test_default_branch_shallow_and_removed(remote, tmp_path) -> None:
    async with checkout(remote, "octo/hello", "ghs_secret", parent=tmp_path) as work:
        assert (work / "README.md").read_text() == "two\n"
        assert git("rev-list", "--count", "HEAD", cwd=work).strip() == "1"  # shallow
        assert "ghs_secret" not in (work / ".git" / "config").read_text()
        kept = work
    assert not kept.exists() and not kept.parent.exists()


async def test_pull_request_head(remote, tmp_path) -> None:
    async with checkout(remote, "octo/hello", None, pull_number=5, parent=tmp_path) as work:
        assert (work / "feature.txt").exists()


async def test_removed_even_when_the_session_fails(remote, tmp_path) -> None:
    with pytest.raises(RuntimeError):
        async with checkout(remote, "octo/hello", None, parent=tmp_path) as work:
            kept = work
            raise RuntimeError("session crashed")
    assert not kept.exists()


async def test_unknown_repository_fails_clearly_without_the_token(remote, tmp_path) -> None:
    with pytest.raises(CheckoutError, match="git clone failed") as failed:
        async with checkout(remote, "octo/missing", "ghs_secret", parent=tmp_path):
            pass
    assert "ghs_secret" not in str(failed.value)
    assert list(tmp_path.glob("ghapp-checkout-*")) == []


def test_token_travels_as_a_header_in_the_environment() -> None:
    env = git_environment("ghs_abc")
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
    assert "ghs_abc" not in env["GIT_CONFIG_VALUE_0"]  # base64 of x-access-token:ghs_abc
