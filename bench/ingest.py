"""Webhook ingest benchmark: the real ghapp endpoint against a bare Starlette one.

Run ``python bench/ingest.py [--seconds N] [--rate 100] [--concurrency C]``.

Method
------
Two targets are served, one after the other, each by a single uvicorn worker in its own
process (uvloop, httptools, log level ``warning``, no access log):

* **bare**: a Starlette app whose ``POST /webhooks/github`` reads the body and answers
  ``202 {"status": "accepted"}``. It is the ceiling: HTTP parsing, ASGI and Starlette,
  with nothing of ghapp.
* **ghapp**: ``ghapp.app.create_app`` on a fresh, migrated SQLite file in a temporary
  directory. Every request is verified (HMAC) and stored (one write transaction).

Readiness is polled with ``GET /healthz``. Each target is then loaded from a separate
load-generator process that first builds every request it will send, before any clock
runs: the ``issues/opened`` example payload (compact JSON) with a distinct ``issue.id``
and a distinct ``X-GitHub-Delivery``, signed with :func:`ghapp.signing.delivery_headers`.
Both targets get the same requests. Requests go out over HTTP/1.1 keep-alive connections
opened with raw asyncio streams (on uvloop); a response is read by its status line,
headers and ``Content-Length`` body. Latency is measured with ``time.perf_counter``.

Phases per target (a connection is never shared by two requests in flight):

1. **warm-up** (``--warmup`` s, closed loop): not a figure; it warms both sides and its
   rate sizes the request set of the next phase.
2. **closed loop** (``--seconds`` s, ``--concurrency`` connections): each connection
   sends its next request as soon as the previous answer arrived. Gives the maximum
   throughput; latency is send-to-answer.
3. **open loop** (``--seconds`` s at ``--rate`` req/s): requests are due at fixed
   intervals whatever the answers do, and go out on the first free connection of a pool
   of ``--concurrency``. Latency runs from the *due* time, so a slow answer that holds
   later requests back counts against them too (no coordinated omission). The ``lag``
   column is how late requests actually left (scheduler and pool delay): a large lag
   means the generator, not the server, was late.

CPU columns are CPU time divided by wall time, in cores: ``gen`` for the load generator
(near 1.0 means it was busy all the time and may be what limits the figure), ``server``
for the uvicorn process (all its threads) and ``other`` for everything else on the
machine (kernel time not charged to a process included). They are read from ``/proc``
(Linux only). A large ``other`` means the figures do not come from a quiet machine.

Finally the ``deliveries`` table is counted with :mod:`sqlite3`: it must hold exactly one
row per ``202`` answer (nothing lost, nothing stored twice). The exit status is 0 whether
or not the goals hold, and 1 if any request failed, answered non-2xx, or the count is off.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import multiprocessing
import os
import platform
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ghapp import logs
from ghapp.server import prepare_database, uvicorn_config
from ghapp.settings import Settings
from ghapp.signing import delivery_headers

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD_FILE = ROOT / "tests" / "fixtures" / "github-payloads" / "issues" / "opened.payload.json"
EVENT = "issues"
WEBHOOK_PATH = "/webhooks/github"
SECRET = "bench-webhook-secret"  # a throwaway secret for a local benchmark
HOST = "127.0.0.1"

ISSUE_ID_MARKER = 987_654_321_012_345  # replaced by a distinct issue id in every body
ISSUE_ID_BASE = 1_000_000_000
CLOSED_LOOP_HEADROOM = 1.5  # build this many times the warm-up rate's worth of requests
WARMUP_REQUESTS_PER_SECOND = 30_000  # more than a single worker can answer here
READY_TIMEOUT_S = 60.0

THROUGHPUT_GOAL = 0.50  # ghapp closed-loop req/s >= this share of bare's
P99_GOAL_MS = 25.0  # ghapp open-loop p99 below this
BUSY_MACHINE_CORES = 0.25  # warn when the rest of the machine used more than this

SERVER_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "loop": "uvloop",
    "http": "httptools",
}
SPAWN = multiprocessing.get_context("spawn")


# --------------------------------------------------------------------------------------
# Servers (each runs in its own process)
# --------------------------------------------------------------------------------------


def bare_app() -> Starlette:
    """The ceiling: read the body, answer 202. No verification, no storage."""

    async def webhook(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"status": "accepted"}, status_code=202)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def serve_bare(port: int) -> None:
    logs.configure("warning")
    config = uvicorn.Config(
        bare_app(),
        host=HOST,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        **SERVER_OPTIONS,
    )
    uvicorn.Server(config).run()


def serve_ghapp(settings_values: dict[str, Any]) -> None:
    settings = Settings(**settings_values)
    logs.configure(settings.log_level)
    uvicorn.Server(uvicorn_config(settings, **SERVER_OPTIONS)).run()


def ghapp_settings_values(directory: Path, port: int) -> dict[str, Any]:
    return {
        "database_url": f"sqlite+aiosqlite:///{directory / 'ghapp.db'}",
        "data_dir": directory,
        "webhook_secret": SECRET,
        "host": HOST,
        "port": port,
        "log_level": "warning",
    }


@contextmanager
def running_server(serve: Callable[..., None], arg: Any, port: int) -> Iterator[int]:
    """Run ``serve(arg)`` in a fresh process until the block ends; yield its pid."""
    process = SPAWN.Process(target=serve, args=(arg,), daemon=True)
    process.start()
    try:
        wait_until_ready(port, process)
        assert process.pid is not None
        yield process.pid
    finally:
        process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join()


def wait_until_ready(port: int, process: multiprocessing.process.BaseProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise RuntimeError(f"server process exited with code {process.exitcode}")
        try:
            if http_get_status(port, "/healthz") == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} not ready after {READY_TIMEOUT_S:.0f} s")


def http_get_status(port: int, path: str) -> int:
    with socket.create_connection((HOST, port), timeout=2) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------
# Requests (built before any timing)
# --------------------------------------------------------------------------------------


class RequestFactory:
    """Signed ``issues`` deliveries, each with its own body and delivery id."""

    def __init__(self, port: int) -> None:
        payload = json.loads(PAYLOAD_FILE.read_text())
        payload["issue"]["id"] = ISSUE_ID_MARKER
        text = json.dumps(payload, separators=(",", ":")).encode()
        # Exactly one occurrence, or the unpacking fails.
        self._prefix, self._suffix = text.split(str(ISSUE_ID_MARKER).encode())
        self._host = f"{HOST}:{port}"
        self._sequence = 0

    def build(self, count: int) -> list[bytes]:
        return [self._next() for _ in range(count)]

    def _next(self) -> bytes:
        self._sequence += 1
        issue_id = str(ISSUE_ID_BASE + self._sequence).encode()
        body = self._prefix + issue_id + self._suffix
        headers = delivery_headers(EVENT, body, SECRET, delivery_id=str(uuid.uuid4()))
        lines = [
            f"POST {WEBHOOK_PATH} HTTP/1.1",
            f"Host: {self._host}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --------------------------------------------------------------------------------------
# Load generator (runs in its own process)
# --------------------------------------------------------------------------------------


class ProtocolError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> int:
        """Send ``request``, read the whole answer, return its status code."""
        # No drain(): the one request in flight is all this connection ever buffers.
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 "):
            raise ProtocolError(f"unexpected status line {head[:40]!r}")
        await self.reader.readexactly(content_length(head))
        return int(head[9:12])

    def close(self) -> None:
        self.writer.close()


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ProtocolError("answer without Content-Length")


@dataclass
class Tally:
    """What one phase observed."""

    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    elapsed: float = 0.0
    ran_out: bool = False  # the closed loop used every request before its time was up


Phase = Callable[[list[Connection], list[bytes]], Awaitable[Tally]]


def closed_loop(seconds: float) -> Phase:
    async def run(connections: list[Connection], requests: list[bytes]) -> Tally:
        tally = Tally()
        pending = iter(requests)  # shared by every worker: next() never awaits
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(connection: Connection) -> None:
            for request in pending:
                sent = time.perf_counter()
                if sent >= deadline:
                    return
                try:
                    status = await connection.exchange(request)
                except (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError):
                    tally.errors += 1
                    return  # this connection is unusable now
                tally.latencies.append(time.perf_counter() - sent)
                tally.statuses[status] += 1
            tally.ran_out = time.perf_counter() < deadline

        await asyncio.gather(*(worker(connection) for connection in connections))
        tally.elapsed = time.perf_counter() - start
        return tally

    return run


def open_loop(rate: float) -> Phase:
    async def run(connections: list[Connection], requests: list[bytes]) -> Tally:
        tally = Tally()
        due: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def worker(connection: Connection) -> None:
            while (item := await due.get()) is not None:
                scheduled, request = item
                sent = time.perf_counter()
                try:
                    status = await connection.exchange(request)
                except (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError):
                    return  # counted below as a request that got no answer
                tally.latencies.append(time.perf_counter() - scheduled)
                tally.lags.append(sent - scheduled)
                tally.statuses[status] += 1

        workers = [asyncio.create_task(worker(connection)) for connection in connections]
        start = time.perf_counter() + 0.01
        for index, request in enumerate(requests):
            scheduled = start + index / rate
            await sleep_until(scheduled)
            due.put_nowait((scheduled, request))
        for _ in workers:
            due.put_nowait(None)
        await asyncio.gather(*workers)
        tally.elapsed = time.perf_counter() - start
        tally.errors = len(requests) - len(tally.latencies)
        return tally

    return run


async def sleep_until(moment: float) -> None:
    # The loop's timers round to the millisecond; never let a request leave early.
    while (delay := moment - time.perf_counter()) > 0:
        await asyncio.sleep(delay)


@dataclass(frozen=True)
class LoadSpec:
    port: int
    server_pid: int
    seconds: float
    warmup: float
    rate: float
    concurrency: int


def generate_load(spec: LoadSpec) -> list[dict[str, Any]]:
    """Entry point of the load-generator process: every phase, as plain dicts."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(drive(spec))


async def drive(spec: LoadSpec) -> list[dict[str, Any]]:
    factory = RequestFactory(spec.port)
    c = spec.concurrency
    warmup_requests = factory.build(math.ceil(WARMUP_REQUESTS_PER_SECOND * spec.warmup))
    warm = await measure(spec, "warm-up", closed_loop(spec.warmup), warmup_requests)
    del warmup_requests

    expected_rate = max(warm["requests"] / warm["elapsed"], 100.0)
    closed_count = math.ceil(expected_rate * spec.seconds * CLOSED_LOOP_HEADROOM) + 1000
    closed = await measure(
        spec, f"closed C={c}", closed_loop(spec.seconds), factory.build(closed_count)
    )

    open_count = math.ceil(spec.rate * spec.seconds)
    opened = await measure(
        spec, f"open {spec.rate:g}/s", open_loop(spec.rate), factory.build(open_count)
    )
    return [warm, closed, opened]


async def measure(spec: LoadSpec, name: str, phase: Phase, requests: list[bytes]) -> dict[str, Any]:
    """Open fresh connections, run ``phase`` on ``requests`` and summarise it."""
    connections = [await Connection.open(spec.port) for _ in range(spec.concurrency)]
    gc.collect()
    gc.freeze()  # keep collector pauses out of the timings
    before = CpuSample.take(spec.server_pid)
    try:
        tally = await phase(connections, requests)
    finally:
        after = CpuSample.take(spec.server_pid)
        gc.unfreeze()
        for connection in connections:
            connection.close()
    return summarise(name, tally) | cpu_use(before, after, tally.elapsed)


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds so far: this process, the server process, and the whole machine."""

    own: float
    server: float | None
    machine: float | None

    @classmethod
    def take(cls, server_pid: int) -> CpuSample:
        return cls(time.process_time(), process_cpu_seconds(server_pid), machine_cpu_seconds())


def cpu_use(before: CpuSample, after: CpuSample, elapsed: float) -> dict[str, float | None]:
    """Cores used during a phase by the generator, the server and everything else."""

    def cores(start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None or not elapsed else (end - start) / elapsed

    gen = cores(before.own, after.own) or 0.0
    server = cores(before.server, after.server)
    machine = cores(before.machine, after.machine)
    other = None if machine is None or server is None else max(0.0, machine - gen - server)
    return {"gen_cpu": gen, "server_cpu": server, "other_cpu": other}


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of every thread of ``pid`` (Linux ``/proc``), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # fields from the 3rd on (state, ppid, …)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float | None:
    """User + nice + system CPU time of all CPUs together (Linux ``/proc/stat``), or None."""
    try:
        first_line = Path("/proc/stat").read_text().partition("\n")[0]
    except OSError:
        return None
    user, nice, system = (int(value) for value in first_line.split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def summarise(name: str, tally: Tally) -> dict[str, Any]:
    elapsed = tally.elapsed
    latencies = sorted(tally.latencies)
    lags = sorted(tally.lags)
    return {
        "phase": name,
        "requests": len(latencies),
        "elapsed": elapsed,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "lag_p99_ms": percentile(lags, 0.99) * 1000 if lags else None,
        "statuses": dict(tally.statuses),
        "non_2xx": sum(n for status, n in tally.statuses.items() if not 200 <= status < 300),
        "errors": tally.errors,
        "ran_out": tally.ran_out,
    }


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


# --------------------------------------------------------------------------------------
# The run: both targets, the table, the goals and the database check
# --------------------------------------------------------------------------------------


@dataclass
class TargetResult:
    name: str
    phases: list[dict[str, Any]]

    def phase(self, prefix: str) -> dict[str, Any]:
        return next(p for p in self.phases if p["phase"].startswith(prefix))

    @property
    def accepted(self) -> int:
        """Answers with status 202 over every phase, warm-up included."""
        return sum(p["statuses"].get(202, 0) for p in self.phases)

    @property
    def failed(self) -> bool:
        return any(p["errors"] or p["non_2xx"] for p in self.phases)


def load_target(name: str, port: int, server_pid: int, args: argparse.Namespace) -> TargetResult:
    spec = LoadSpec(
        port=port,
        server_pid=server_pid,
        seconds=args.seconds,
        warmup=args.warmup,
        rate=args.rate,
        concurrency=args.concurrency,
    )
    print(f"  {name}: serving (pid {server_pid}, port {port}), loading…", flush=True)
    with ProcessPoolExecutor(max_workers=1, mp_context=SPAWN) as pool:
        phases = pool.submit(generate_load, spec).result()
    return TargetResult(name, phases)


def run_bare(args: argparse.Namespace) -> TargetResult:
    port = free_port()
    with running_server(serve_bare, port, port) as pid:
        return load_target("bare", port, pid, args)


def run_ghapp(args: argparse.Namespace, directory: Path) -> tuple[TargetResult, int]:
    """Load ghapp on a fresh database; return the result and the stored row count."""
    port = free_port()
    values = ghapp_settings_values(directory, port)
    asyncio.run(prepare_database(Settings(**values), migrate=True))
    with running_server(serve_ghapp, values, port) as pid:
        result = load_target("ghapp", port, pid, args)
    # The server has shut down: every committed delivery is in the file.
    with sqlite3.connect(directory / "ghapp.db") as db:
        (rows,) = db.execute("SELECT count(*) FROM deliveries").fetchone()
    return result, int(rows)


def machine_info() -> list[str]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return [
        f"CPUs: {os.cpu_count()} (usable by this process: {affinity or '?'}); "
        f"{cpu_model() or platform.processor() or platform.machine()}",
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.platform()}",
        f"uvicorn {uvicorn.__version__}, uvloop {uvloop.__version__}",
    ]


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


def print_table(results: list[TargetResult]) -> None:
    header = (
        f"{'target':<6} {'phase':<14} {'answers':>8} {'req/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'lag99':>6} {'non2xx':>6} {'errors':>6} "
        f"{'gen':>5} {'server':>6} {'other':>5}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        for p in result.phases:
            lag = "-" if p["lag_p99_ms"] is None else f"{p['lag_p99_ms']:.1f}"
            print(
                f"{result.name:<6} {p['phase']:<14} {p['requests']:>8} {p['rps']:>8.0f} "
                f"{p['p50_ms']:>7.2f} {p['p99_ms']:>7.2f} {p['max_ms']:>7.1f} {lag:>6} "
                f"{p['non_2xx']:>6} {p['errors']:>6} {p['gen_cpu']:>5.2f} "
                f"{cores(p['server_cpu']):>6} {cores(p['other_cpu']):>5}"
            )
    print("(latencies in ms; lag99 = p99 of how late open-loop requests left; gen / server /")
    print(" other = CPU cores used by the load generator / server / rest of the machine;")
    print(" the warm-up row is not a figure)")


def cores(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def print_verdict(bare: TargetResult, ghapp: TargetResult, args: argparse.Namespace) -> None:
    for result in (bare, ghapp):
        closed = result.phase("closed")
        if closed["ran_out"]:
            print(
                f"WARNING: {result.name} closed loop ran out of pre-built requests after "
                f"{closed['elapsed']:.1f} s (figures cover that time only)"
            )
    busiest = max(
        (p["other_cpu"] or 0.0, r.name, p["phase"]) for r in (bare, ghapp) for p in r.phases
    )
    if busiest[0] > BUSY_MACHINE_CORES:
        print(
            f"WARNING: other processes used {busiest[0]:.2f} cores during {busiest[1]} "
            f"{busiest[2]}: the machine was not quiet, figures are pessimistic"
        )
    bare_rps = bare.phase("closed")["rps"]
    ratio = ghapp.phase("closed")["rps"] / bare_rps if bare_rps else 0.0
    p99 = ghapp.phase("open")["p99_ms"]
    print(f"\nthroughput ghapp/bare: {ratio:.1%}")
    print(
        f"goal ghapp >= {THROUGHPUT_GOAL:.0%} of bare throughput: "
        f"{'HOLDS' if ratio >= THROUGHPUT_GOAL else 'MISSED'} ({ratio:.1%})"
    )
    print(
        f"goal ghapp p99 < {P99_GOAL_MS:g} ms at {args.rate:g} req/s: "
        f"{'HOLDS' if p99 < P99_GOAL_MS else 'MISSED'} ({p99:.2f} ms)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop requests/s")
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0 or args.concurrency < 1 or args.warmup <= 0:
        parser.error("--seconds, --rate, --concurrency and --warmup must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("ghapp webhook ingest benchmark")
    for line in machine_info():
        print(f"  {line}")
    print(
        f"  phases: warm-up {args.warmup:g} s, closed loop {args.seconds:g} s with "
        f"{args.concurrency} connections, open loop {args.seconds:g} s at {args.rate:g} req/s\n"
    )
    bare = run_bare(args)
    with tempfile.TemporaryDirectory(prefix="ghapp-bench-") as tmp:
        ghapp, rows = run_ghapp(args, Path(tmp))
    print()
    print_table([bare, ghapp])
    print_verdict(bare, ghapp, args)

    consistent = rows == ghapp.accepted
    print(
        f"database check: {rows} rows in deliveries, {ghapp.accepted} answers 202 -> "
        f"{'OK' if consistent else 'MISMATCH'}"
    )
    failed = [r.name for r in (bare, ghapp) if r.failed]
    if failed:
        print(f"INVALID RUN: errors or non-2xx answers from {', '.join(failed)}")
    return 0 if consistent and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
