"""Helpers for tests of ghapp's command line: reading the tables it prints."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a printed table, cells split on runs of spaces."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("─")) + 1
    return [re.split(r" {2,}", line.strip()) for line in lines[start:] if line.strip()]


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_terminal(
    args: list[str], answers: list[str], env: dict[str, str], timeout: float = 60
) -> tuple[int, str]:
    """``python -m ghapp ARGS`` on a pseudo-terminal (a person at a keyboard), the answers
    typed ahead a line each; its exit code and everything the terminal showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "ghapp", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "NO_COLOR": "1", "COLUMNS": "200"},
        close_fds=True,
    )
    os.close(slave)
    os.write(master, "".join(f"{answer}\n" for answer in answers).encode())
    shown = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the command has ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    try:
        code = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"still waiting after {timeout} s: {shown.decode()!r}") from None
    text = ANSI.sub("", shown.decode(errors="replace")).replace("\r\n", "\n")
    return code, text


def cli_env(base: str, token: str | None, **extra: str) -> dict[str, str]:
    """The environment of a real ``ghapp`` process: no GHAPP_* but the server and token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAPP_")}
    env["GHAPP_URL"] = base
    if token:
        env["GHAPP_TOKEN"] = token
    env.update(extra)
    return env


def serve_first_lines(cwd: Path, env: dict[str, str]) -> list[str]:
    """What ``ghapp serve`` says on stderr up to "serving on …"; then it is stopped."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ghapp", "serve"],
        cwd=cwd,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines: list[str] = []
        while not lines or "serving on" not in lines[-1]:
            line = process.stderr.readline()
            assert line, f"serve ended before it was serving: {lines}"
            lines.append(line.strip())
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    return lines
