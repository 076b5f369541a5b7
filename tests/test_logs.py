"""Log lines as people and collectors read them: human on a terminal, JSON on a pipe.

The commands run as a user runs them (a subprocess on a pseudo-terminal or a pipe); the
formatters' guarantees (no ANSI codes in JSON, no ``color_message``, control characters
escaped, notifier URLs masked) are checked on real lines, the real uvicorn's among them.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pty
import re
import select
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ghapp import logs
from ghapp.db import migrate
from ghapp.db.migrate import MIGRATED, head_revision
from ghapp.notify.outbound import Outbound
from ghapp.notify.send import deliver
from tests.conftest import PG_URL, _admin, _asyncpg_dsn
from tests.notify_support import receiver
from tests.test_cli_server import GHAPP, clean_env, free_port, wait_until_healthy

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HUMAN = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO |WARNING|ERROR|CRITICAL) \S+  \S")
READ_TIMEOUT_S = 60


# Every migration there is: the count a first upgrade reports.
MIGRATIONS = len(
    list((Path(migrate.__file__).parent / "migrations" / "versions").glob("[0-9]*.py"))
)


def migrated_line(count: int) -> str:
    return MIGRATED.format(before="<none>", after=head_revision(), count=count)


def on_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run ``args`` with stderr on a pseudo-terminal; what it wrote there (ANSI kept)."""
    main, other = pty.openpty()
    try:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=other,
        )
    finally:
        os.close(other)  # the child holds its own copy: EOF comes when it exits
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([main], [], [], READ_TIMEOUT_S)
            assert ready, f"no output for {READ_TIMEOUT_S} s: {b''.join(chunks)!r}"
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: every copy of the terminal's other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(main)
        process.wait(timeout=READ_TIMEOUT_S)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode().replace("\r\n", "\n")


def on_pipe(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr


def log_lines(stderr: str) -> list[str]:
    """The log lines among stderr's lines (the CLI's own notes start with ``ghapp:``)."""
    return [line for line in ANSI.sub("", stderr).splitlines() if not line.startswith("ghapp:")]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database nothing has been migrated in yet."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'ghapp.db'}"
        return
    if not PG_URL:
        pytest.skip("GHAPP_TEST_DATABASE_URL is not set")
    name = f"ghapp_logs_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _asyncpg_dsn(PG_URL, name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- the format: auto, json, human ---------------------------------------------------------------


def test_auto_writes_json_on_a_pipe(tmp_path: Path) -> None:
    stderr = on_pipe([*GHAPP, "db", "upgrade"], tmp_path, clean_env())
    lines = log_lines(stderr)
    assert [json.loads(line)["msg"] for line in lines] == [migrated_line(MIGRATIONS)]
    assert "\x1b[" not in stderr  # nothing coloured for a pipe, the CLI's notes neither


def test_auto_writes_human_lines_on_a_terminal(tmp_path: Path) -> None:
    env = clean_env(TERM="xterm")
    env.pop("NO_COLOR", None)  # colour, unless the person asked for none
    written = on_terminal([*GHAPP, "db", "upgrade"], tmp_path, env)
    assert "\x1b[32mINFO \x1b[0m" in written  # the level in colour, on a terminal
    lines = log_lines(written)
    assert len(lines) == 1 and HUMAN.match(lines[0]), lines
    assert lines[0].endswith(
        f"INFO  db  {migrated_line(MIGRATIONS)} from_revision=null "
        f"to_revision={head_revision()} migrations={MIGRATIONS}"
    )


def test_no_color_leaves_the_level_plain(tmp_path: Path) -> None:
    written = on_terminal([*GHAPP, "db", "upgrade"], tmp_path, clean_env(NO_COLOR="1"))
    [line] = [line for line in written.splitlines() if "database migrated" in line]
    assert "\x1b" not in line and HUMAN.match(line)


@pytest.mark.parametrize(
    ("fmt", "terminal", "human"),
    [("json", True, False), ("human", False, True), ("auto", False, False)],
)
def test_ghapp_log_format_overrides_auto(
    tmp_path: Path, fmt: str, terminal: bool, human: bool
) -> None:
    run = on_terminal if terminal else on_pipe
    written = run([*GHAPP, "db", "upgrade"], tmp_path, clean_env(GHAPP_LOG_FORMAT=fmt))
    [line] = [line for line in written.splitlines() if "database migrated" in line]
    if human:
        assert HUMAN.match(line) and "\x1b" not in line  # asked for, but not a terminal
    else:
        assert json.loads(line)["logger"] == "ghapp.db" and "\x1b" not in line


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format 'xml' is not one of auto, json, human"):
        logs.formatter("xml", io.StringIO())  # type: ignore[arg-type]


# -- migrations: one line ---------------------------------------------------------------------


def test_a_first_upgrade_logs_one_line_and_a_second_none(
    empty_database: str, tmp_path: Path
) -> None:
    env = clean_env(GHAPP_DATABASE_URL=empty_database, GHAPP_WEBHOOK_SECRET="s")
    first = log_lines(on_pipe([*GHAPP, "db", "upgrade"], tmp_path, env))
    assert len(first) == 1, first  # not alembic's two context lines and one per revision
    line = json.loads(first[0])
    assert (
        line["msg"]
        == migrated_line(MIGRATIONS)
        == (f"database migrated from <none> to {head_revision()} ({MIGRATIONS} migrations)")
    )
    assert (line["from_revision"], line["to_revision"], line["migrations"]) == (
        None,
        head_revision(),
        MIGRATIONS,
    )
    assert log_lines(on_pipe([*GHAPP, "db", "upgrade"], tmp_path, env)) == []


def test_upgrading_part_of_the_way_counts_the_migrations_run(tmp_path: Path) -> None:
    env = clean_env(GHAPP_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'ghapp.db'}")
    on_pipe([*GHAPP, "db", "upgrade", "0010"], tmp_path, env)
    [line] = log_lines(on_pipe([*GHAPP, "db", "upgrade"], tmp_path, env))
    assert (
        json.loads(line)["msg"]
        == f"database migrated from 0010 to {head_revision()} ({MIGRATIONS - 10} migrations)"
    )


# -- the real uvicorn's lines ------------------------------------------------------------------


def test_uvicorns_lines_are_json_without_colour(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*GHAPP, "serve"],
        cwd=tmp_path,
        env=clean_env(GHAPP_PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    lines = [json.loads(line) for line in log_lines(stderr)]
    uvicorn = [line["msg"] for line in lines if line["logger"].startswith("uvicorn")]
    assert f"Started server process [{process.pid}]" in uvicorn  # lines that had colour
    assert f"Uvicorn running on http://127.0.0.1:{port} (Press CTRL+C to quit)" in uvicorn
    assert not [line for line in lines if "color_message" in line]
    assert "\x1b" not in stderr and "\\u001b" not in stderr


# -- what the formatters write -------------------------------------------------------------------


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    root, stream = logging.getLogger(), io.StringIO()
    saved = root.level, root.handlers[:]
    yield stream
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]


def test_human_lines_carry_ids_and_fields_and_escape_control_characters(written) -> None:
    logs.configure("info", written, "human")
    hostile = "evil\x1b]0;owned\x07name\u009b31m"  # a title setter and a C1 escape
    with logs.bind(delivery_id="d-1"):
        logging.getLogger("ghapp.webhooks").info(
            "stored %s", hostile, extra={"repo": hostile, "title": 'two "words"', "n": 3}
        )
    [line] = written.getvalue().splitlines()
    escaped = "evil\\x1b]0;owned\\x07name\\x9b31m"
    assert line.split(" ", 1)[1] == (
        f'INFO  webhooks  stored {escaped} delivery_id=d-1 repo="{escaped}" '
        'title="two \\"words\\"" n=3'
    )


def test_human_lines_show_a_traceback_indented(written) -> None:
    logs.configure("info", written, "human")
    try:
        raise RuntimeError("disk full")
    except RuntimeError:
        logging.getLogger("ghapp.worker").exception("slot failed")
    first, *trace = written.getvalue().splitlines()
    assert first.endswith("ERROR worker  slot failed")
    assert trace[0] == "    Traceback (most recent call last):"
    assert trace[-1] == "    RuntimeError: disk full"


def test_json_lines_carry_no_ansi_codes_nor_color_message(written) -> None:
    logs.configure("info", written, "json")
    logging.getLogger("ghapp.test").info(  # as uvicorn logs its start
        "Started \x1b[1mserver\x1b[0m",
        extra={"color_message": "\x1b[36m%d\x1b[0m", "k": "\x1b[2mv"},
    )
    [line] = written.getvalue().splitlines()
    data = json.loads(line)
    assert (data["msg"], data["k"]) == ("Started server", "v")
    assert "color_message" not in data and "u001b" not in line


async def test_notifier_urls_are_masked_in_human_lines(written) -> None:
    logs.configure("debug", written, "human")
    httpx_log = logging.getLogger("httpx")
    saved = httpx_log.level, httpx_log.propagate
    httpx_log.setLevel(logging.INFO)  # as someone debugging might
    httpx_log.propagate = True  # the suite's secrets check holds httpx's lines back
    try:
        async with receiver() as (url, _), Outbound.from_allow("127.0.0.1").client() as http:
            assert (
                await deliver(http, "generic", url, {"event": "task_completed", "message": "hi"})
            ).ok
    finally:
        httpx_log.setLevel(saved[0])
        httpx_log.propagate = saved[1]
    port = urlsplit(url).port
    [line] = [line for line in written.getvalue().splitlines() if "HTTP Request" in line]
    assert line.endswith(
        f'httpx  HTTP Request: POST http://127.0.0.1:{port}/**** "HTTP/1.1 200 OK"'
    )
    assert url not in written.getvalue()
