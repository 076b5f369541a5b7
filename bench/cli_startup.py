"""How long ``ghapp`` takes to start: ``--help``, ``schedule --help``, ``schedule list``.

Starts ``ghapp serve --no-worker`` on a fresh SQLite directory (an admin token in its
environment), then runs each command ``--runs`` times as a user's shell would (a new
process each time, the console script of this venv) and prints min / median / max wall
seconds, with the load average, which these figures depend on. Goal: under 0.4 s.

    python bench/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import free_port  # bench/ is on sys.path when a bench runs

GOAL_SECONDS = 0.4
TOKEN = "bench-admin-token"
COMMANDS = (["--help"], ["schedule", "--help"], ["schedule", "list"])


def ghapp_script() -> str:
    return shutil.which("ghapp", path=str(Path(sys.executable).parent)) or "ghapp"


def serve(directory: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAPP_")}
    env.update(GHAPP_PORT=str(port), GHAPP_ADMIN_TOKEN=TOKEN)
    server = subprocess.Popen(
        [ghapp_script(), "serve", "--no-worker"],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)  # polling a condition, bounded by the deadline
    server.terminate()
    raise SystemExit("ghapp serve did not become healthy")


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user + system: less at the mercy of a busy machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([ghapp_script(), *args], env=env, capture_output=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"ghapp {' '.join(args)} failed: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        server = serve(Path(directory), port)
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("GHAPP_")}
            env.update(GHAPP_URL=f"http://127.0.0.1:{port}", GHAPP_TOKEN=TOKEN)
            print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, {runs} runs")
            for args in COMMANDS:
                measured = [timed(args, env) for _ in range(runs)]
                times = [wall for wall, _ in measured]
                median = statistics.median(times)
                cpu = statistics.median(cpu for _, cpu in measured)
                mark = "ok" if median < GOAL_SECONDS else f"over {GOAL_SECONDS} s"
                print(
                    f"ghapp {' '.join(args):<16} wall min {min(times):.2f}  median {median:.2f}  "
                    f"max {max(times):.2f} s  {mark};  CPU median {cpu:.2f} s"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
