"""``ghapp demo`` as a user runs it: the real CLI in a subprocess, offline, again and again.

The output is read with its whitespace folded (:func:`said`): the demo wraps comments at
word boundaries to the terminal's width, and what matters is what it says.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ghapp.demo.directory import NOT_THE_DEMOS
from ghapp.demo.run import DASHBOARD_LIVE, STOPPED
from ghapp.demo.show import HIDDEN
from ghapp.worker.authorize import REFUSED_REPLY
from tests.support import csrf_of
from tests.test_cli_server import GHAPP, clean_env, free_port, ghapp, wait_until_healthy

TOKEN = re.compile(r"^Sign-in token: (ghapp_[A-Za-z0-9_-]{43}) \(", re.M)
LIVE = re.compile(r"^Dashboard: (http://127\.0\.0\.1:\d+)/login \(serving until Ctrl-C\)$")


def said(text: str) -> str:
    """``text`` with every run of whitespace (wrapping, table padding) made one space."""
    return " ".join(text.split())


def run_demo(directory: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return ghapp("demo", "--dir", str(directory), cwd=directory.parent, env=env)


def assert_it_showed_every_behaviour(out: str) -> None:
    text = said(out)
    # the reaction to a writer's command
    assert (
        "👀 reaction: @maintainer (write access) commented “/triage focus on the README”; "
        "ghapp reacted 👀 at once (command accepted) and ran it."
    ) in text
    # each tracking comment, first as posted and then as edited in place, with its marker
    # (run ids vary: the cron job's catch-up run may be queued first or later)
    for job in ("Triage new issues", "/triage"):
        assert re.search(
            rf"comment \d+, {re.escape(job)}: posted, then edited in place once "
            rf"before ⏳ \*\*{re.escape(job)}\*\* is working on this\. \[Follow the "
            rf"run\]\(http://127\.0\.0\.1:\d+/runs/\d\)\. after ✅ \*\*{re.escape(job)}\*\* "
            r"finished\.",
            text,
        ), text
    assert len(re.findall(r"hidden <!-- ghapp:session=\d+ -->", text)) == 2
    assert said(HIDDEN) in text
    # the refusals: a reader's command (with ghapp's whole reply), the replay, the forgery
    reply = REFUSED_REPLY.format(login="visitor", command="/triage")
    assert re.search(
        r"- @visitor \(read access\) commented “/triage”: no 👀 and no session \(run \d "
        r"skipped: visitor has read permission; commands need write or admin\); ghapp "
        rf"replied: {re.escape(reply)}",
        text,
    ), text
    assert (
        "- its body replayed, new delivery id: HTTP 200, duplicate: this payload was already "
        "received under another delivery id"
    ) in text
    assert "- forged signature: HTTP 401, signature does not match any configured" in text
    assert "did not go as promised" not in text


@pytest.mark.parametrize("cli", ["real", "stand-in"])
def test_demo_runs_offline_and_succeeds(tmp_path: Path, claude_bin: str, cli: str) -> None:
    env = clean_env(GHAPP_CLAUDE_BIN=claude_bin) if cli == "real" else clean_env()
    result = run_demo(tmp_path / "demo", env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    first = out.splitlines()[0]
    if cli == "real":
        assert first == (
            f"Claude Code: {claude_bin} (2.1.332 (Claude Code)), its model answered by a "
            "stand-in on loopback"
        )
        with sqlite3.connect(tmp_path / "demo" / "ghapp.db") as conn:
            results = [row[0] for row in conn.execute("select result_text from sessions")]
        assert any("The README (" in (text or "") for text in results)  # its Read tool ran
        assert "The README (4 lines) is the only file affected; a one-word fix." in out
    else:
        assert first.startswith("Claude Code: not installed, so ghapp's built-in stand-in")
    runs = [line for line in out.splitlines() if line.startswith("│ ") and "$" in line]
    # (trigger, status) of each run; the cron job's catch-up run may come first or last.
    outcomes = sorted((line.split("│")[2].strip(), line.split("│")[3].strip()) for line in runs)
    assert outcomes == [
        ("command", "completed"),
        ("command", "skipped"),
        ("event", "completed"),
        ("scheduled", "completed"),
    ]
    assert_it_showed_every_behaviour(out)


def test_demo_runs_again_and_again_in_the_same_directory(tmp_path: Path) -> None:
    directory, env = tmp_path / "ghapp-demo", clean_env()
    first, second = run_demo(directory, env), run_demo(directory, env)
    for result in (first, second):
        assert result.returncode == 0, result.stdout + result.stderr
        assert_it_showed_every_behaviour(result.stdout)
        token = TOKEN.search(result.stdout)
        assert token, result.stdout
        assert token.group(1) not in result.stderr  # printed once, never logged
        assert result.stdout.rstrip().splitlines()[-2] == (
            f"Dashboard: http://127.0.0.1:8000/login once `cd {directory} && ghapp serve` runs "
            "(this run's server has stopped; `ghapp demo --keep` leaves it running)"
        )
    assert f"a fresh database, {directory / 'ghapp.db'} (each run starts clean)" in first.stdout
    assert "(each run starts clean; the last run's was removed)" in second.stdout
    with sqlite3.connect(directory / "ghapp.db") as conn:  # one run's worth, not two
        assert conn.execute("select count(*) from runs").fetchone() == (4,)
        assert conn.execute("select count(*) from jobs").fetchone() == (3,)

    # What the last line says: `ghapp serve` in the directory serves the demo's database,
    # and the token printed signs in to its dashboard.
    token = TOKEN.search(second.stdout)
    assert token
    port = free_port()
    process = subprocess.Popen(
        [*GHAPP, "serve"],
        cwd=directory,
        env=clean_env(GHAPP_PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        page = signed_in_overview(f"http://127.0.0.1:{port}", token.group(1))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert "Daily health check" in page


def signed_in_overview(url: str, token: str) -> str:
    with httpx.Client(base_url=url, timeout=10) as http:
        form = http.get("/login")
        assert form.status_code == 200
        answer = http.post(
            "/login", data={"csrf_token": csrf_of(form.text), "token": token, "next": "/"}
        )
        assert answer.status_code == 303, answer.text
        page = http.get("/")
        assert page.status_code == 200
        return page.text


@pytest.fixture
def kept(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [*GHAPP, "demo", "--keep", "--dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def test_demo_keep_serves_the_dashboard_until_ctrl_c(kept: subprocess.Popen[str]) -> None:
    assert kept.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("Sign-in token:"):
        line = kept.stdout.readline()
        assert line, f"the demo ended before its sign-in token: {''.join(lines)}"
        lines.append(line)
    live = LIVE.match(lines[-2].rstrip())
    assert live, lines[-2]
    assert lines[-2].rstrip() == DASHBOARD_LIVE.format(url=live.group(1))
    token = TOKEN.search(lines[-1])
    assert token
    assert_it_showed_every_behaviour("".join(lines))

    page = signed_in_overview(live.group(1), token.group(1))
    assert "Triage new issues" in page and "Daily health check" in page

    kept.send_signal(signal.SIGINT)
    rest, stderr = kept.communicate(timeout=30)
    assert kept.returncode == 0, stderr
    assert rest.strip() == STOPPED
    assert token.group(1) not in stderr
    with pytest.raises(httpx.TransportError):  # the server stopped with it
        httpx.get(f"{live.group(1)}/healthz", timeout=2)


def test_demo_leaves_a_database_it_did_not_make_alone(tmp_path: Path) -> None:
    directory = tmp_path / "mine"
    directory.mkdir()
    (directory / "ghapp.db").write_bytes(b"someone's data")
    result = run_demo(directory, clean_env())
    assert result.returncode == 1
    assert said(result.stdout) == "ghapp demo: " + said(
        NOT_THE_DEMOS.format(
            database=directory / "ghapp.db", repository=Path("remote/Codertocat/Hello-World.git")
        )
    )
    assert (directory / "ghapp.db").read_bytes() == b"someone's data"


def test_demo_says_what_did_not_happen(tmp_path: Path) -> None:
    """A Claude Code that fails every session: the demo names each missing behaviour."""
    broken = tmp_path / "claude"
    broken.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo "9.9.9 (broken)"; exit 0; fi\n'
        'echo "no model today" >&2\nexit 3\n'
    )
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    result = run_demo(tmp_path / "demo", clean_env(GHAPP_CLAUDE_BIN=str(broken)))
    assert result.returncode == 1, result.stdout + result.stderr
    text = said(result.stdout)
    assert "ghapp demo: 1 thing(s) did not go as promised: ✗ the runs ended as:" in text, text
    assert (
        "the demo expects: command completed, command skipped, event completed, scheduled completed"
        in text
    )
    assert "got no 👀 reaction" not in text  # the 👀 comes before the session
    assert "was never edited in place" not in text  # a failure is edited in too (❌)
    assert "❌ **/triage** did not finish" in text
    assert TOKEN.search(result.stdout)  # and it still says where to look


def test_demo_needs_no_network(tmp_path: Path, claude_bin: str) -> None:
    """Run in a network namespace of its own, with loopback and nothing else."""
    isolate = ["unshare", "--user", "--map-root-user", "--net", "sh", "-c"]
    probe = subprocess.run([*isolate, "ip link set lo up"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no network namespace here: {probe.stderr.decode().strip()}")
    script = 'ip link set lo up && exec "$@"'
    result = subprocess.run(
        [*isolate, script, "sh", *GHAPP, "demo", "--dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=clean_env(GHAPP_CLAUDE_BIN=claude_bin),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert_it_showed_every_behaviour(result.stdout)
    assert "The README (4 lines) is the only file affected" in result.stdout  # the real CLI
