"""What the sandbox costs a session: process start → first model request, with and without.

Run ``python bench/sandbox.py [--runs 20] [--claude PATH]``.

Each run starts the real Claude Code CLI in a fresh session folder (checkout, home and
temporary folder, as the executor makes them) with ``ghapp.runners.claude``'s environment,
once as it is and once inside bubblewrap exactly as ``ghapp.sandbox.Sandbox.wrap`` puts it,
alternating. The model stand-in answers at once; the figure is the time from just before
the process is spawned to the stand-in receiving the CLI's first request (the moment the
agent is really working), and the whole session's wall time. Prints p50 / p90 / max for
both, and the difference of the medians: the sandbox's added time per session start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import pct  # bench/ is on sys.path when a bench runs

from ghapp.runners.claude import SessionOptions, command_line, session_environment
from ghapp.sandbox import probe
from ghapp.standins.model import ModelStandIn, Turn

ROOT = Path(__file__).resolve().parent.parent
PINNED = ROOT / "npm" / "claude-code" / "node_modules" / ".bin" / "claude"


def one(model: ModelStandIn, claude: str, url: str, sandboxed: bool) -> tuple[float, float]:
    sandbox = probe("required")
    with tempfile.TemporaryDirectory(prefix="ghapp-bench-") as scratch:
        work = Path(scratch) / "repo"
        work.mkdir()
        subprocess.run(["git", "init", "-q", str(work)], check=True)
        env = session_environment(
            {**os.environ, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "bench"},
            scratch=Path(scratch),
        )
        argv = command_line(os.path.realpath(claude), "Say hello.", SessionOptions())
        if sandboxed:
            argv = sandbox.wrap(argv, scratch=Path(scratch), cwd=work)
        before = len(model.requests)
        started = time.monotonic()  # the stand-in notes requests on the same clock
        subprocess.run(argv, cwd=work, env=env, capture_output=True, check=True)
        ended = time.monotonic()
        first = model.requests[before].received_at
        return first - started, ended - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--claude", default=str(PINNED))
    args = parser.parse_args()
    if not probe("required").active:
        print("the sandbox cannot run here:", probe("required").problem)
        return 1
    model = ModelStandIn(lambda request: Turn.text("Hello."))
    figures: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with model.serve_in_thread() as url:
        one(model, args.claude, url, False)  # warm the page cache once
        for _ in range(args.runs):
            for sandboxed in (False, True):
                figures[sandboxed].append(one(model, args.claude, url, sandboxed))
    for sandboxed, rows in figures.items():
        starts = [first * 1000 for first, _ in rows]
        walls = [wall * 1000 for _, wall in rows]
        label = "sandbox on " if sandboxed else "sandbox off"
        print(
            f"{label}: start → first model request p50 {pct(starts, 0.5):6.1f} ms, "
            f"p90 {pct(starts, 0.9):6.1f} ms, max {max(starts):6.1f} ms; "
            f"whole session p50 {pct(walls, 0.5):6.1f} ms"
        )
    added = statistics.median(f for f, _ in figures[True]) - statistics.median(
        f for f, _ in figures[False]
    )
    print(f"the sandbox adds {added * 1000:.1f} ms (median) to a session's start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
