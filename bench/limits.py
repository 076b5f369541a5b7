"""Limits under attack: ghapp keeps taking signed deliveries while slow drips and large
unsigned bodies arrive (issue 17).

Run ``python bench/limits.py [--seconds 30] [--quiet-seconds 10] [--rate 100] [--drips 20]
[--big 8] [--big-mib 24] [--skip-markdown]``.

Method
------
* **The server** is ``ghapp serve`` as deployed: :func:`ghapp.server.uvicorn_config` (the
  app, its scheduler and 4 worker slots on one event loop; httptools) in its own process
  (multiprocessing *spawn*), on a fresh migrated SQLite file, with the default limits
  (``GHAPP_BODY_TIMEOUT_SECONDS`` 10, ``GHAPP_WEBHOOK_CONCURRENCY`` 32,
  ``GHAPP_WEBHOOK_LARGE_BODIES`` 2, ``GHAPP_MAX_BODY_BYTES`` 25 MiB). Its log lines (level
  warning) go to a file and are counted by level at the end.
* **Signed deliveries**, open loop: ``--rate`` a second, each due at a fixed time whatever
  the answers do, each a distinct ``issues.opened`` (the octokit example payload with its own
  issue id and delivery id) signed with the server's webhook secret, sent over a pool of 32
  keep-alive connections (raw asyncio streams). Latency runs from the due time, so a late
  answer that holds the next ones back counts against them too.
* **Phase 1, quiet** (``--quiet-seconds``): the deliveries alone. **Phase 2, attack**
  (``--seconds``): the deliveries, and meanwhile
  - ``--drips`` slow-drip connections: a delivery's headers (bad signature, Content-Length
    100,000) and then one byte every 0.5 s. A connection that is cut (an answer, or closed)
    is replaced at once, so ``--drips`` are dripping all the time; the time from its first
    byte to its cut is noted;
  - ``--big`` connections each sending an unsigned body of ``--big-mib`` MiB with its
    Content-Length, as fast as the socket takes it, reading the answer meanwhile and
    stopping when it comes; after each answer (or reset) it waits 1 s and sends another.
* The server's **RSS** (``VmRSS`` of ``/proc/PID/status``) is sampled every 50 ms; its
  ``VmHWM`` (the peak since it started) is read at the end.
* With the server stopped, the **Markdown renderer** (``ghapp.dashboard.markdown``) renders
  200 KB of each pathological input in this process, timed (``--skip-markdown``: not).

Prints, per phase, the signed deliveries' answers and latency (p50, p99, max), the peak
RSS; for the attack, how many drips were cut, how (408, closed) and after how long, and
the answers the large bodies got. Exit status: 0 when every signed delivery got a 202 and
every drip older than the deadline was cut; 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import free_port, pct  # bench/ is on sys.path when a bench runs

from ghapp import logs
from ghapp.server import prepare_database, uvicorn_config
from ghapp.settings import Settings
from ghapp.signing import delivery_headers
from ghapp.standins.rawhttp import RawConnection

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD_FILE = ROOT / "tests" / "fixtures" / "github-payloads" / "issues" / "opened.payload.json"
HOST = "127.0.0.1"
SECRET = "bench-limits-secret"  # a throwaway secret for a local benchmark
UNSIGNED = "sha256=" + "0" * 64
POOL = 32  # keep-alive connections for the signed deliveries
DRIP_EVERY_S = 0.5
BIG_PAUSE_S = 1.0
SLICE = 1024 * 1024  # how the large bodies are written
READY_TIMEOUT_S = 60.0
SPAWN = multiprocessing.get_context("spawn")
HZ = os.sysconf("SC_CLK_TCK")


# -- the server (its own process) --------------------------------------------------------------


def serve(values: dict[str, Any], log_path: str) -> None:
    import uvicorn

    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    logs.configure(settings.log_level, stream=open(log_path, "a"))  # lives as long as the process
    uvicorn.Server(uvicorn_config(settings, log_level="warning")).run()


def rss_kib(pid: int, field_name: str = "VmRSS") -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) if match else None


# -- a client connection that keeps whatever comes back ----------------------------------------


@dataclass
class Raw(RawConnection):
    @classmethod
    async def open(cls, port: int) -> Raw:
        raw: Raw = await cls.connect(HOST, port)
        return raw

    async def write(self, data: bytes | memoryview) -> bool:
        await self.writable.wait()
        if self.closed.is_set() or self.answered or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    @property
    def answered(self) -> bool:
        return b"\r\n\r\n" in self.received

    @property
    def status(self) -> int | None:
        return int(self.received[9:12]) if self.answered else None


def head(length: int, signature: str, delivery: str, port: int) -> bytes:
    headers = delivery_headers("issues", b"", SECRET, delivery)
    headers["X-Hub-Signature-256"] = signature
    lines = ["POST /webhooks/github HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- the load --------------------------------------------------------------------------------


@dataclass
class Observed:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    drips: list[tuple[float, float, str]] = field(default_factory=list)  # opened, cut, how
    drips_open: list[float] = field(default_factory=list)  # opened, never cut
    big: Counter[str] = field(default_factory=Counter)
    big_bytes_before_answer: dict[str, list[int]] = field(default_factory=dict)
    rss: dict[str, list[int]] = field(default_factory=dict)
    cores: dict[str, tuple[float, float, float]] = field(
        default_factory=dict
    )  # server, bench, other
    attack_started: float = 0.0


class Deliveries:
    """Signed ``issues.opened`` deliveries, each with its own issue id and delivery id."""

    def __init__(self, port: int) -> None:
        payload = json.loads(PAYLOAD_FILE.read_text())
        self.payload = payload
        self.port = port
        self.sequence = 0

    def next(self) -> bytes:
        self.sequence += 1
        self.payload["issue"]["id"] = 2_000_000_000 + self.sequence
        body = json.dumps(self.payload, separators=(",", ":")).encode()
        headers = delivery_headers("issues", body, SECRET, str(uuid.uuid4()))
        lines = ["POST /webhooks/github HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
) -> tuple[int, bool]:
    """Send ``request``; its answer's status, and whether the server closes the connection."""
    reader, writer = streams
    writer.write(request)
    answer = await reader.readuntil(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", answer).group(1))  # type: ignore[union-attr]
    await reader.readexactly(length)
    return int(answer[9:12]), re.search(rb"(?i)connection:\s*close", answer) is not None


async def signed_deliveries(
    port: int, rate: float, phases: list[tuple[str, float]], seen: Observed
) -> None:
    factory = Deliveries(port)
    due: asyncio.Queue[tuple[str, float, bytes] | None] = asyncio.Queue()

    async def worker() -> None:
        streams = await asyncio.open_connection(HOST, port)
        while (item := await due.get()) is not None:
            phase, scheduled, request = item
            closing = True
            try:
                answered, closing = await exchange(streams, request)
                status = str(answered)
            except (OSError, asyncio.IncompleteReadError) as exc:
                status = type(exc).__name__
            if closing:  # a refusal closes its connection: GitHub would open a new one
                streams[1].close()
                streams = await asyncio.open_connection(HOST, port)
            seen.latencies[phase].append(time.perf_counter() - scheduled)
            seen.statuses[phase][status] += 1
        streams[1].close()

    workers = [asyncio.create_task(worker()) for _ in range(POOL)]
    start = time.perf_counter() + 0.05
    index = 0
    for phase, seconds in phases:
        seen.latencies[phase], seen.statuses[phase] = [], Counter()
        end = start + seconds
        while (scheduled := start + index / rate) < end:
            request = factory.next()  # built before its due time: not in the latency
            while (delay := scheduled - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            due.put_nowait((phase, scheduled, request))
            index += 1
        start = end
        index = 0
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)


async def drip(port: int, until: float, seen: Observed, number: int) -> None:
    """One slow-drip connection at a time, replaced as soon as it is cut."""
    generation = 0
    while time.perf_counter() < until:
        generation += 1
        raw = await Raw.open(port)
        opened = time.perf_counter()
        await raw.write(head(100_000, UNSIGNED, f"drip-{number}-{generation}", port))
        while time.perf_counter() < until:
            if not await raw.write(b" "):
                break
            try:
                await asyncio.wait_for(raw.arrived.wait(), DRIP_EVERY_S)  # the drip's pace
            except TimeoutError:
                continue
            if raw.answered or raw.closed.is_set():
                break
        if raw.answered or raw.closed.is_set():
            how = str(raw.status) if raw.answered else "closed"
            seen.drips.append((opened, time.perf_counter(), how))
        else:
            seen.drips_open.append(opened)
        raw.transport.close()


async def big_bodies(port: int, until: float, seen: Observed, number: int, body: bytes) -> None:
    view = memoryview(body)  # slices without copies
    sent_count = 0
    while time.perf_counter() < until:
        sent_count += 1
        raw = await Raw.open(port)
        written = 0
        if await raw.write(head(len(body), UNSIGNED, f"big-{number}-{sent_count}", port)):
            for offset in range(0, len(body), SLICE):
                piece = view[offset : offset + SLICE]
                if not await raw.write(piece):  # type: ignore[arg-type]
                    break
                written += len(piece)
        try:
            await asyncio.wait_for(raw.arrived.wait(), 30)
            while not raw.answered and not raw.closed.is_set():
                raw.arrived.clear()
                await asyncio.wait_for(raw.arrived.wait(), 30)
        except TimeoutError:
            pass
        how = str(raw.status) if raw.answered else "reset/closed"
        seen.big[how] += 1
        seen.big_bytes_before_answer.setdefault(how, []).append(written)
        raw.transport.close()
        await asyncio.sleep(BIG_PAUSE_S)  # an attacker's pace, not a synchronisation


async def sample_rss(pid: int, seen: Observed, phases: list[tuple[str, float]]) -> None:
    start = time.perf_counter()
    for phase, seconds in phases:
        seen.rss[phase] = []
        end = start + seconds
        before = (cpu_seconds(f"/proc/{pid}/stat"), busy_seconds(), time.process_time())
        while time.perf_counter() < end:
            value = rss_kib(pid)
            if value is not None:
                seen.rss[phase].append(value)
            await asyncio.sleep(0.05)  # the sampling period
        after = (cpu_seconds(f"/proc/{pid}/stat"), busy_seconds(), time.process_time())
        server, machine, bench = (b - a for a, b in zip(before, after, strict=True))
        seen.cores[phase] = (
            server / seconds,
            bench / seconds,
            (machine - server - bench) / seconds,
        )
        start = end


def cpu_seconds(stat_path: str) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(stat_path).read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def busy_seconds() -> float:
    """User + nice + system CPU time of the whole machine."""
    user, nice, system = (int(v) for v in Path("/proc/stat").read_text().split()[1:4])
    return (user + nice + system) / HZ


async def run_load(port: int, pid: int, args: argparse.Namespace) -> Observed:
    seen = Observed()
    phases = [("quiet", args.quiet_seconds), ("attack", args.seconds)]
    load = asyncio.create_task(signed_deliveries(port, args.rate, phases, seen))
    rss = asyncio.create_task(sample_rss(pid, seen, phases))
    await asyncio.sleep(args.quiet_seconds)  # the quiet phase's length
    seen.attack_started = time.perf_counter()
    until = seen.attack_started + args.seconds
    attackers = [drip(port, until, seen, n) for n in range(args.drips)]
    size = args.big_mib * SLICE
    body = b'{"pad":"' + b"x" * (size - 10) + b'"}'  # one copy for every sender
    attackers += [big_bodies(port, until, seen, n, body) for n in range(args.big)]
    await asyncio.gather(load, rss, *attackers)
    return seen


# -- the report ----------------------------------------------------------------------------


def report(seen: Observed, hwm_kib: int | None, log_path: Path, args: argparse.Namespace) -> bool:
    ok = True
    print(
        f"{'phase':8} {'sent':>6} {'answers':24} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'RSS max MiB':>12}"
    )
    for phase in ("quiet", "attack"):
        latencies = seen.latencies[phase]
        answers = ", ".join(f"{k} x{v}" for k, v in sorted(seen.statuses[phase].items()))
        rss = max(seen.rss.get(phase) or [0]) / 1024
        print(
            f"{phase:8} {len(latencies):6} {answers:24} {pct(latencies, 0.5) * 1000:8.1f}"
            f" {pct(latencies, 0.99) * 1000:8.1f} {max(latencies) * 1000:8.1f} {rss:12.1f}"
        )
        ok &= set(seen.statuses[phase]) == {"202"}
    for phase, (server, bench, other) in seen.cores.items():
        print(
            f"CPU, {phase}: server {server:.2f} cores, this bench {bench:.2f}, the rest of the "
            f"machine {other:.2f}" + ("  (NOT a quiet machine)" if other > 0.25 else "")
        )
    quiet_rss = max(seen.rss.get("quiet") or [0]) / 1024
    attack_rss = max(seen.rss.get("attack") or [0]) / 1024
    print(
        f"server RSS: {quiet_rss:.1f} MiB at most before the attack, {attack_rss:.1f} MiB at most"
        f" during it (+{attack_rss - quiet_rss:.1f}); VmHWM {(hwm_kib or 0) / 1024:.1f} MiB"
    )
    cuts = [cut - opened for opened, cut, _ in seen.drips]
    hows = Counter(how for _, _, how in seen.drips)
    if cuts:
        first = min(cut for _, cut, _ in seen.drips) - seen.attack_started
        print(
            f"slow drips: {len(cuts)} cut ({', '.join(f'{k} x{v}' for k, v in hows.items())}) "
            f"after {min(cuts):.2f} to {max(cuts):.2f} s (median {statistics.median(cuts):.2f} s);"
            f" the first {first:.2f} s into the attack"
        )
    else:
        print("slow drips: none was cut")
    end = seen.attack_started + args.seconds
    ages = sorted(end - opened for opened in seen.drips_open)
    print(
        f"            {len(ages)} still dripping at the end, the oldest "
        f"{ages[-1] if ages else 0:.2f} s old"
    )
    ok &= not ages or ages[-1] <= 10.5  # none outlived the 10 s deadline (and a drip's pace)
    ok &= bool(cuts) or args.seconds < 10
    print(f"large unsigned bodies ({args.big} senders, {args.big_mib} MiB each, 1 s apart):")
    for how, count in sorted(seen.big.items()):
        sent = seen.big_bytes_before_answer[how]
        print(
            f"  {how:13} x{count:<4} bytes written before the answer: median "
            f"{statistics.median(sent) / SLICE:.1f} MiB, max {max(sent) / SLICE:.1f} MiB"
        )
    levels = Counter(
        json.loads(line).get("level", "?")
        for line in log_path.read_text().splitlines()
        if line.startswith("{")
    )
    print(f"server log lines by level: {dict(levels) or 'none'}")
    ok &= levels.get("error", 0) == 0
    return ok


def markdown_timings() -> None:
    from ghapp.dashboard.markdown import render_markdown

    size = 200_000
    cases = {
        "# x + spaces + x": "# x" + " " * size + "x",
        "[ x 200,000": "[" * size,
        "**a  repeated": "**a " * (size // 4),
        "[a]( repeated": "[a](" * (size // 4),
        "http://. repeated": "http://." * (size // 8),
        "backticks": "a" + "`" * size,
        "- - - ... x": "- " * (size // 2) + "x",
        "*a  repeated": "*a " * (size // 3),
    }
    print(f"markdown: {size // 1000} KB of each pathological input, rendered once each")
    for name, text in cases.items():
        started = time.perf_counter()
        render_markdown(text)
        print(f"  {name:20} {(time.perf_counter() - started) * 1000:7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="the attack phase")
    parser.add_argument("--quiet-seconds", type=float, default=10.0, help="deliveries alone")
    parser.add_argument("--rate", type=float, default=100.0, help="signed deliveries a second")
    parser.add_argument("--drips", type=int, default=20, help="slow-drip connections")
    parser.add_argument("--big", type=int, default=8, help="large unsigned body senders")
    parser.add_argument("--big-mib", type=int, default=24, help="size of each large body")
    parser.add_argument("--skip-markdown", action="store_true", help="no Markdown timings")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ghapp-limits-") as tmp:
        directory = Path(tmp)
        port = free_port()
        values = {
            "database_url": f"sqlite+aiosqlite:///{directory / 'ghapp.db'}",
            "data_dir": str(directory / "data"),
            "webhook_secret": SECRET,
            "host": HOST,
            "port": port,
            "log_level": "warning",
            "work_dir": str(directory / "work"),
        }
        asyncio.run(prepare_database(Settings(_env_file=None, **values), migrate=True))  # type: ignore[call-arg]
        log_path = directory / "server.log"
        server = SPAWN.Process(target=serve, args=(values, str(log_path)), daemon=True)
        server.start()
        try:
            wait_until_ready(port, server)
            assert server.pid is not None
            seen = asyncio.run(run_load(port, server.pid, args))
            hwm = rss_kib(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.join(30)
        print(
            f"ghapp limits: {args.rate:g} signed deliveries/s; {args.quiet_seconds:g} s quiet, "
            f"then {args.seconds:g} s with {args.drips} slow drips and {args.big} unsigned "
            f"{args.big_mib} MiB bodies (SQLite, default limits, Python {sys.version.split()[0]})"
        )
        ok = report(seen, hwm, log_path, args)
    if not args.skip_markdown:
        markdown_timings()
    return 0 if ok else 1


def wait_until_ready(port: int, process: Any) -> None:
    import httpx

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise RuntimeError(f"the server exited with code {process.exitcode}")
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # polling the server's readiness
    raise RuntimeError(f"the server on port {port} was not ready after {READY_TIMEOUT_S:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
