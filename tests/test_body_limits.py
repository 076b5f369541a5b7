"""Nothing a client sends can stall the loop or exhaust memory (issue 17).

The slow-client tests talk to a real uvicorn on a loopback port through a small asyncio
protocol of their own, which writes exactly the bytes it is told and keeps every byte the
server answers, even when the server then resets the connection. Their deadlines are made
small through the settings (``body_timeout_seconds``) and they wait on what the server
does (its answer, the connection closing, the webhook's own slot counters), each within a
bounded time.

The limits are reached before the database is, so these tests run on SQLite only, but for
the one where a signed delivery is stored while a drip holds a slot: it runs on both. The
tests of a request's head serve the app as ``ghapp serve`` configures uvicorn
(``ghapp.server.uvicorn_config``), whose HTTP protocol bounds the head.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st

from ghapp.app import create_app
from ghapp.bodies import nested_deeper_than
from ghapp.server import uvicorn_config
from ghapp.signing import delivery_headers
from ghapp.standins.rawhttp import RawConnection
from ghapp.standins.serving import in_loop
from tests.api_support import ADMIN_TOKEN, REPO_A, api_under_test
from tests.conftest import make_settings
from tests.support import (
    SECRET,
    add_repository,
    count_deliveries,
    live_server,
    load,
    send,
    sign_in,
)

ISSUE = load("issues/opened.payload.json")
BODY = json.dumps(ISSUE).encode()
WAIT_S = 10.0  # the bound on every wait below; each normally ends in milliseconds
MiB = 1024 * 1024
UNSIGNED = "sha256=" + "0" * 64  # the right shape, the wrong value


# -- a client that sends what it is told -----------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client(RawConnection):
    """One HTTP/1.1 connection: raw writes, and whatever comes back, kept."""

    @classmethod
    async def open(cls, base: str) -> Client:
        address = urlsplit(base)
        assert address.hostname is not None and address.port is not None
        client: Client = await cls.connect(address.hostname, address.port)
        return client

    async def send(self, data: bytes) -> bool:
        """Write ``data`` once the socket takes more; False once the connection is gone."""
        await asyncio.wait_for(self.writable.wait(), WAIT_S)
        if self.closed.is_set():
            return False
        self.transport.write(data)
        return True

    def answer(self) -> Answer | None:
        """The response, once all of it has arrived."""
        head, found, rest = bytes(self.received).partition(b"\r\n\r\n")
        if not found:
            return None
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if len(rest) < length:
            return None
        return Answer(int(status_line.split()[1]), headers, rest[:length])

    async def response(self) -> Answer:
        async with asyncio.timeout(WAIT_S):
            while (answer := self.answer()) is None:
                assert not self.closed.is_set(), f"closed without an answer: {self.received!r}"
                self.arrived.clear()
                await self.arrived.wait()
        return answer

    async def wait_closed(self) -> None:
        await asyncio.wait_for(self.closed.wait(), WAIT_S)

    def close(self) -> None:
        self.transport.close()


def request_head(path: str, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: ghapp.test"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def webhook_head(length: int | None, delivery: str, signature: str = UNSIGNED) -> bytes:
    headers = delivery_headers("issues", b"", SECRET, delivery)
    headers["X-Hub-Signature-256"] = signature
    return request_head("/webhooks/github", headers, length)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for state the server sets, within WAIT_S."""
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.005)  # polling the server's own counters


def intake(app: Any) -> Any:
    """The webhook's slot counters."""
    return app.state.ghapp.intake


def in_flight(app: Any, count: int) -> Callable[[], bool]:
    return lambda: intake(app) is not None and intake(app).in_flight == count


# The limits are reached before the database is: SQLite is enough.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@dataclass
class Served:
    app: Any
    base: str
    clients: list[Client]

    async def connect(self) -> Client:
        client = await Client.open(self.base)
        self.clients.append(client)
        return client


@pytest.fixture
async def served(db_url, db, tmp_path) -> AsyncIterator[Callable[..., Any]]:
    """``await serve(**settings)``: an app with those settings on a loopback port."""
    await add_repository(db)  # REPO_A, for the API's routes
    clients: list[Client] = []
    async with AsyncExitStack() as servers:

        async def serve(**settings: Any) -> Served:
            app = create_app(make_settings(db_url, tmp_path, **settings), db=db)
            return Served(app, await servers.enter_async_context(live_server(app)), clients)

        try:
            yield serve
        finally:
            # A failed test may leave bodies half sent: the server would wait for them
            # before it stops (uvicorn's graceful shutdown has no limit here).
            for client in clients:
                client.close()


# -- webhook: the deadline --------------------------------------------------------------------


async def test_a_slow_drip_is_cut_at_the_deadline_while_a_signed_delivery_is_accepted(
    served, db
) -> None:
    server = await served(body_timeout_seconds=0.5)
    drip = await server.connect()
    await drip.send(webhook_head(100_000, "drip-1") + b'{"action":')
    await until(in_flight(server.app, 1), "the drip to hold a slot")

    async with httpx.AsyncClient(base_url=server.base) as http:
        stored = await send(http, "issues", BODY, delivery="real-1")
    assert stored.status_code == 202, stored.text

    # A byte now and then, as a slow-loris client does, until the server answers: a drip
    # that never pauses long would outlive any idle timeout; only a total deadline cuts it.
    dripped = 0
    async with asyncio.timeout(WAIT_S):
        while drip.answer() is None and not drip.closed.is_set():
            if await drip.send(b" "):
                dripped += 1
            drip.arrived.clear()
            try:
                await asyncio.wait_for(drip.arrived.wait(), 0.05)  # the drip's pace
            except TimeoutError:
                continue
    answer = await drip.response()
    assert answer.status == 408
    assert answer.json() == {"error": "the body did not arrive within 0.5 s"}
    assert answer.headers["connection"] == "close"
    await drip.wait_closed()
    assert dripped >= 2  # it was still sending when it was cut
    assert intake(server.app).in_flight == 0
    assert await count_deliveries(db) == 1


# -- webhook: the slots -----------------------------------------------------------------------


@sqlite_only
async def test_requests_beyond_the_slots_get_503_at_once_and_slots_come_back(
    served, db, caplog
) -> None:
    server = await served(webhook_concurrency=2)
    holders = [await server.connect() for _ in range(2)]
    for number, holder in enumerate(holders):
        await holder.send(webhook_head(len(BODY), f"hold-{number}") + BODY[:10])
    await until(in_flight(server.app, 2), "two requests to hold both slots")

    extra = await server.connect()
    await extra.send(webhook_head(len(BODY), "extra"))  # not a byte of its body
    answer = await extra.response()
    assert answer.status == 503
    assert answer.headers["retry-after"] == "10"
    assert answer.headers["connection"] == "close"
    assert "busy" in answer.json()["error"]
    await extra.wait_closed()

    async with httpx.AsyncClient(base_url=server.base) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        for holder in holders:
            holder.close()  # gone mid-body: their slots must come back
        await until(in_flight(server.app, 0), "the slots to be free again")
        assert (await send(http, "issues", BODY)).status_code == 202
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@sqlite_only
async def test_large_unsigned_bodies_beyond_their_slots_are_refused_unread(served, db) -> None:
    server = await served()  # the defaults: two large bodies at once
    holders = [await server.connect() for _ in range(2)]
    for number, holder in enumerate(holders):
        await holder.send(webhook_head(24 * MiB, f"big-{number}") + b"x" * 65536)
    await until(
        lambda: intake(server.app) is not None and intake(server.app).large == 2, "two large bodies"
    )

    # Declared: refused from the headers, before a byte of the body is sent.
    for number in range(3):
        declared = await server.connect()
        await declared.send(webhook_head(24 * MiB, f"declared-{number}"))
        answer = await declared.response()
        assert (answer.status, answer.headers["retry-after"]) == (503, "10")
        assert "bodies over 1 MiB" in answer.json()["error"]
        await declared.wait_closed()

    # Chunked: refused as soon as the count passes 1 MiB (sent whole: nothing left unread).
    chunked = await server.connect()
    await chunked.send(webhook_head(None, "chunked"))
    for _ in range(16):
        await chunked.send(chunk(b"x" * (MiB // 16)))
    await chunked.send(chunk(b"x"))
    answer = await chunked.response()
    assert answer.status == 503
    await chunked.wait_closed()

    async with httpx.AsyncClient(base_url=server.base) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await send(http, "issues", BODY)).status_code == 202  # small: a slot of its own
    assert (intake(server.app).in_flight, intake(server.app).large) == (2, 2)
    for holder in holders:
        holder.close()
    await until(lambda: intake(server.app).large == 0, "the large slots to be free again")


@sqlite_only
async def test_an_oversized_webhook_body_without_a_length_is_refused_while_read(served, db) -> None:
    server = await served(max_body_bytes=2 * MiB)
    client = await server.connect()
    await client.send(webhook_head(None, "huge"))
    sent = 0
    while client.answer() is None and not client.closed.is_set() and sent < 64 * MiB:
        if not await client.send(chunk(b"x" * 65536)):
            break
        sent += 65536
    answer = await client.response()
    assert answer.status == 413
    assert answer.json() == {"error": f"body larger than {2 * MiB} bytes"}
    assert sent < 64 * MiB  # it was answered long before the end of what was on offer
    await until(in_flight(server.app, 0), "the slot to be free again")


# -- the API reads with a running count ------------------------------------------------------


@sqlite_only
async def test_api_refuses_an_oversized_chunked_body_while_reading(served, db) -> None:
    server = await served(admin_token=ADMIN_TOKEN)
    client = await server.connect()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    await client.send(request_head(f"/api/repos/{REPO_A}/schedules", headers, None))
    offered = 64 * MiB
    sent = 0
    while client.answer() is None and not client.closed.is_set() and sent < offered:
        if not await client.send(chunk(b" " * 65536)):
            break
        sent += 65536
    answer = await client.response()
    assert answer.status == 413
    assert answer.json() == {"error": "the body is larger than 1000000 bytes"}
    assert answer.headers["connection"] == "close"
    assert sent < offered  # the old code read all 64 MiB before it measured


@sqlite_only
async def test_api_stops_pulling_the_body_once_it_is_too_large(db_url, db, tmp_path) -> None:
    """Exactly how much is read: the ASGI transport pulls the body only when asked."""
    pulled = 0
    piece = 64 * 1024

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(320):  # 20 MiB on offer
            pulled += 1
            yield b" " * piece

    async with api_under_test(db_url, db, tmp_path) as api:
        answer = await api.http.post(
            f"/api/repos/{REPO_A}/schedules",
            headers={**api.admin(), "Content-Type": "application/json"},
            content=body(),
        )
    assert answer.status_code == 413
    assert pulled * piece <= 1_000_000 + 2 * piece


# -- nesting: 400, never a 500 -----------------------------------------------------------------

DEEP = [65, 500, 5000, 100_000]


@sqlite_only
@pytest.mark.parametrize("depth", DEEP)
async def test_api_refuses_deeply_nested_json(db_url, db, tmp_path, depth) -> None:
    body = b'{"name": ' + b"[" * depth + b"]" * depth + b"}"
    async with api_under_test(db_url, db, tmp_path) as api:
        answer = await api.http.post(
            f"/api/repos/{REPO_A}/schedules",
            headers={**api.admin(), "Content-Type": "application/json"},
            content=body,
        )
        assert answer.status_code == 400
        assert answer.json() == {"error": "the body nests JSON deeper than 64 levels"}
        shallow = b'{"name": ' + b"[" * 63 + b"]" * 63 + b"}"  # 64 levels: parsed, then 422
        answer = await api.http.post(
            f"/api/repos/{REPO_A}/schedules",
            headers={**api.admin(), "Content-Type": "application/json"},
            content=shallow,
        )
        assert answer.status_code == 422


@sqlite_only
@pytest.mark.parametrize("depth", [65, 500, 1000])
async def test_webhook_refuses_deeply_nested_json(client, db, depth) -> None:
    nested = '{"x": ' * depth + "1" + "}" * depth  # orjson itself reads up to 1024 levels
    body = ('{"action": "opened", "deep": ' + nested + "}").encode()
    answer = await send(client, "issues", body)
    assert answer.status_code == 400
    assert answer.json() == {"error": "body nests JSON deeper than 64 levels"}
    assert await count_deliveries(db) == 0


@sqlite_only
async def test_dashboard_refuses_deeply_nested_json_in_a_form(db_url, db, tmp_path) -> None:
    async with api_under_test(db_url, db, tmp_path) as dash:
        csrf = await sign_in(dash.http, ADMIN_TOKEN)
        form = {"csrf_token": csrf, "name": "Deep", "task_config": "[" * 100_000}
        answer = await dash.http.post("/jobs", data=form)
        assert answer.status_code == 400
        assert "nests brackets deeper than 64 levels" in answer.text
        too_many = {"csrf_token": csrf, **{f"f{i}": "1" for i in range(2001)}}
        assert (await dash.http.post("/jobs", data=too_many)).status_code == 400
        too_large = {"csrf_token": csrf, "name": "x" * 1_000_001}
        answer = await dash.http.post("/jobs", data=too_large)
        assert answer.status_code == 413 and "The form is too large." in answer.text


# -- a client leaving mid-body: no 500, no error logged ---------------------------------------


@sqlite_only
async def test_clients_leaving_mid_body_are_logged_at_debug_level_only(served, db, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="ghapp")
    server = await served(admin_token=ADMIN_TOKEN)
    async with httpx.AsyncClient(base_url=server.base) as browser:
        await sign_in(browser, ADMIN_TOKEN)
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    api = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    cases = [
        (webhook_head(len(BODY), "leaves"), "webhook sender went away"),
        (request_head(f"/api/repos/{REPO_A}/schedules", api, 1000), "api client went away"),
        (request_head("/jobs", form, 1000), "dashboard client went away"),
        (request_head("/login", {"Content-Type": form["Content-Type"]}, 1000), "dashboard"),
    ]
    for head, message in cases:
        caplog.clear()
        leaving = await server.connect()
        await leaving.send(head + b"name=x&abc")
        leaving.close()
        await until(
            lambda message=message: (
                any(r.getMessage().startswith(message) for r in caplog.records)
                or any(r.levelno >= logging.ERROR for r in caplog.records)
            ),
            f"the server to notice ({message})",
        )
        gone = [r for r in caplog.records if r.getMessage().startswith(message)]
        assert [r.levelno for r in gone] == [logging.DEBUG]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    registry = server.app.state.ghapp.metrics.registry
    labels = {"event": "-", "outcome": "disconnected"}
    assert registry.get_sample_value("ghapp_webhook_deliveries_total", labels) == 1


# -- the head: what uvicorn reads before any body ---------------------------------------------


@asynccontextmanager
async def ghapp_serve(db_url: str, tmp_path: Any, **settings: Any) -> AsyncIterator[str]:
    """The server as ``ghapp serve`` configures uvicorn (its protocol included)."""
    config = uvicorn_config(
        make_settings(db_url, tmp_path, **settings), workers=0, port=0, log_level="warning"
    )
    async with in_loop(uvicorn.Server(config), "ghapp") as server:
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"


@sqlite_only
async def test_a_head_that_never_ends_is_cut_at_the_deadline(db_url, db, tmp_path) -> None:
    async with ghapp_serve(db_url, tmp_path, body_timeout_seconds=0.5) as base:
        silent = await Client.open(base)  # connects, sends nothing
        dripping = await Client.open(base)
        await dripping.send(b"POST /webhooks/github HTTP/1.1\r\nHost: ghapp.test\r\nX-Slow: ")
        async with asyncio.timeout(WAIT_S):
            while dripping.answer() is None and not dripping.closed.is_set():
                await dripping.send(b"a")
                dripping.arrived.clear()
                try:
                    await asyncio.wait_for(dripping.arrived.wait(), 0.05)  # the drip's pace
                except TimeoutError:
                    continue
        for client in (silent, dripping):
            answer = await client.response()
            assert (answer.status, answer.headers["connection"]) == (408, "close")
            await client.wait_closed()
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/healthz")).status_code == 200


@sqlite_only
async def test_a_head_too_large_is_refused_before_it_is_kept(db_url, db, tmp_path) -> None:
    async with ghapp_serve(db_url, tmp_path) as base:
        client = await Client.open(base)
        await client.send(b"GET /healthz HTTP/1.1\r\nHost: ghapp.test\r\nX-Big: ")
        sent = 0
        while client.answer() is None and not client.closed.is_set() and sent < 64 * MiB:
            if not await client.send(b"a" * 16384):
                break
            sent += 16384
        answer = await client.response()
        assert answer.status == 431
        assert sent < 64 * MiB
        await client.wait_closed()
        async with httpx.AsyncClient(base_url=base) as http:  # a head of ordinary size
            big_but_fine = {"X-Fine": "a" * 32_000}
            assert (await http.get("/healthz", headers=big_but_fine)).status_code == 200


# -- the depth, measured without parsing ------------------------------------------------------


def depth_of(value: Any) -> int:
    """Levels of arrays and objects, counted on the parsed value."""
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(item) for item in value), default=0)
    return 0


tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\ab,: \n\u00e9')), max_size=12)
json_trees = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=json_trees, bound=st.integers(min_value=0, max_value=8))
def test_the_depth_is_measured_as_a_parser_would(value: Any, bound: int) -> None:
    text = json.dumps(value, ensure_ascii=False)  # brackets, quotes, escapes inside strings
    assert nested_deeper_than(text, bound) == (depth_of(value) > bound)
    assert nested_deeper_than(text.encode(), bound) == (depth_of(value) > bound)


def test_the_depth_of_long_inputs_is_measured_in_one_pass() -> None:
    assert nested_deeper_than(b"[" * 1_000_000)
    assert nested_deeper_than(b"[0," * 65 + b"]" * 65)
    assert not nested_deeper_than(b"[" * 64 + b"]" * 64)
    assert not nested_deeper_than(b'["' + b"[" * 1_000_000 + b'"]')  # inside a string
    assert not nested_deeper_than(b'"' + b'\\"[' * 100_000)  # an unterminated string
    assert not nested_deeper_than((b"[" * 64 + b"]" * 64) * 10_000)
