"""The TCP fault proxy forwards bytes unchanged and cuts connections the way an outage does.

Everything uses real sockets on loopback: asyncpg to the machine's PostgreSQL through the
proxy (``GHAPP_TEST_DATABASE_URL``'s host and port when set, else 127.0.0.1:5432, user
``postgres``, trust authentication), and a small echo server for the byte-level checks.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import pytest

from ghapp.standins.tcpfault import TcpFaultProxy

_PG = urlsplit(os.environ.get("GHAPP_TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432")
PG_HOST = _PG.hostname or "127.0.0.1"
PG_PORT = _PG.port or 5432
PG_USER = _PG.username or "postgres"
WAIT = 5.0  # bound on every wait for something that should happen at once


@pytest.fixture
def pg_proxy() -> Iterator[TcpFaultProxy]:
    with TcpFaultProxy(PG_HOST, PG_PORT) as proxy:
        yield proxy


def _url(proxy: TcpFaultProxy) -> str:
    return f"postgresql://{PG_USER}@127.0.0.1:{proxy.port}/postgres"


@dataclass
class Echo:
    """An echo server that records how each connection ended (``"eof"`` or ``"reset"``).

    On the client's EOF it answers ``b"bye"`` before closing, which can only arrive if the
    half-close went through and the other direction stayed open.
    """

    port: int = 0
    endings: list[str] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.write(b"bye")
            await writer.drain()
            writer.close()
            self.endings.append("eof")
        except ConnectionError:  # ECONNRESET on a read, EPIPE on a write
            self.endings.append("reset")
        self.ended.set()

    async def wait_endings(self, count: int) -> list[str]:
        async with asyncio.timeout(WAIT):
            while len(self.endings) < count:
                self.ended.clear()
                await self.ended.wait()
        return self.endings


@asynccontextmanager
async def echo_server() -> AsyncIterator[Echo]:
    echo = Echo()
    server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    echo.port = server.sockets[0].getsockname()[1]
    async with server:
        yield echo
        # Let every connection finish (the proxy, stopped by now, reset what was left) so no
        # handler is still pending when the test's loop closes.
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*echo.handlers)


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _round_trip(proxy: TcpFaultProxy, message: bytes = b"ping") -> Stream:
    """Open a connection through the proxy and check one echo; return it, still open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(message)
    async with asyncio.timeout(WAIT):
        assert await reader.readexactly(len(message)) == message
    return reader, writer


async def _assert_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The next read fails with ECONNRESET (an RST), not b"" (a clean EOF) nor a hang."""
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(WAIT):
            await reader.read(1)
    writer.close()


async def _assert_new_connection_reset(proxy: TcpFaultProxy) -> None:
    """The kernel completes the handshake, then the proxy resets at once: depending on which
    loop runs first, the client's connect or its first read reports ECONNRESET."""
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(WAIT):
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            try:
                await reader.read(1)
            finally:
                writer.close()


# == PostgreSQL through the proxy ==========================================================


async def test_postgres_connection_is_cut_new_ones_fail_fast_and_restore_works(
    pg_proxy: TcpFaultProxy,
) -> None:
    conn = await asyncpg.connect(_url(pg_proxy))
    assert await conn.fetchval("select 1") == 1
    assert (pg_proxy.accepted, pg_proxy.active) == (1, 1)

    pg_proxy.cut()
    assert pg_proxy.is_cut and pg_proxy.active == 0 and pg_proxy.cut_connections == 1

    # The open connection got an RST: asyncpg reports it as ConnectionDoesNotExistError
    # ("connection was closed in the middle of operation"), caused by ECONNRESET.
    with pytest.raises(asyncpg.ConnectionDoesNotExistError) as lost:
        await conn.fetchval("select 1")
    assert isinstance(lost.value.__cause__, ConnectionResetError)
    assert conn.is_closed()

    # A new connection is reset on arrival: asyncpg raises ConnectionResetError at once,
    # not a timeout (TimeoutError is an OSError too, hence the explicit check).
    started = time.monotonic()
    with pytest.raises(ConnectionResetError) as refused:
        await asyncpg.connect(_url(pg_proxy), timeout=5)
    assert not isinstance(refused.value, TimeoutError)
    assert time.monotonic() - started < 1.0
    assert pg_proxy.refused_while_cut == 1

    pg_proxy.restore()
    assert not pg_proxy.is_cut
    again = await asyncpg.connect(_url(pg_proxy))
    try:
        assert await again.fetchval("select 2") == 2
        assert (pg_proxy.accepted, pg_proxy.active) == (2, 1)
    finally:
        await again.close()
    assert [kind for _, kind in pg_proxy.events] == ["cut", "restore"]
    assert pg_proxy.events[0][0] <= pg_proxy.events[1][0]
    assert (pg_proxy.accepted, pg_proxy.refused_while_cut, pg_proxy.cut_connections) == (2, 1, 1)


async def test_cut_for_restores_by_itself(pg_proxy: TcpFaultProxy) -> None:
    conn = await asyncpg.connect(_url(pg_proxy))
    started = time.monotonic()
    restored = pg_proxy.cut_for(0.2)  # returns once the cut is applied, not after 0.2 s
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await conn.fetchval("select 1")

    assert await asyncio.to_thread(restored.wait, WAIT)
    assert time.monotonic() - started >= 0.2
    assert not pg_proxy.is_cut
    again = await asyncpg.connect(_url(pg_proxy))
    try:
        assert await again.fetchval("select 1") == 1
    finally:
        await again.close()
    (cut_at, cut), (restore_at, restore) = pg_proxy.events
    assert (cut, restore) == ("cut", "restore")
    assert 0.2 <= restore_at - cut_at < WAIT
    assert (pg_proxy.accepted, pg_proxy.cut_connections, pg_proxy.refused_while_cut) == (2, 1, 0)


def test_from_synchronous_code_with_blocking_sockets() -> None:
    """No event loop in this test: a blocking client speaks to PostgreSQL through the proxy."""
    ssl_request = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
    with TcpFaultProxy(PG_HOST, PG_PORT) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as client:
            client.sendall(ssl_request)
            assert client.recv(1) in (b"N", b"S")  # PostgreSQL's answer, forwarded
            proxy.cut()
            with pytest.raises(ConnectionResetError):
                client.recv(1)
        proxy.restore()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT) as client:
            client.sendall(ssl_request)
            assert client.recv(1) in (b"N", b"S")
            thread = proxy._thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()  # stop() joined the proxy's thread…
    with pytest.raises(ConnectionRefusedError):  # …and closed the listening socket
        socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT).close()


# == bytes and half-closes, against an echo server =========================================


async def test_bytes_are_forwarded_unchanged_both_ways_and_half_close_propagates() -> None:
    async with echo_server() as echo:
        with TcpFaultProxy("127.0.0.1", echo.port) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            every_byte = bytes(range(256))
            writer.write(every_byte)
            async with asyncio.timeout(WAIT):
                assert await reader.readexactly(256) == every_byte

            payload = os.urandom(1024 * 1024)

            async def send() -> None:
                writer.write(payload)
                await writer.drain()
                writer.write_eof()  # half-close: we are done sending, still reading

            async def receive() -> bytes:
                return await reader.read()  # until EOF

            async with asyncio.timeout(WAIT):
                _, received = await asyncio.gather(send(), receive())
            # The echo server saw our EOF (not a reset), answered "bye" after it, then closed.
            assert received == payload + b"bye"
            assert await echo.wait_endings(1) == ["eof"]
            writer.close()
            await writer.wait_closed()
            assert (proxy.accepted, proxy.cut_connections, proxy.refused_while_cut) == (1, 0, 0)


async def test_cut_resets_both_sides_refuses_new_connections_and_restore_lets_them_in() -> None:
    async with echo_server() as echo:
        with TcpFaultProxy("127.0.0.1", echo.port) as proxy:
            first, second = await _round_trip(proxy), await _round_trip(proxy)
            assert (proxy.accepted, proxy.active) == (2, 2)

            proxy.cut()
            assert (proxy.active, proxy.cut_connections) == (0, 2)
            for stream in (first, second):  # an RST, not a clean EOF, on the client side…
                await _assert_reset(*stream)
            assert await echo.wait_endings(2) == ["reset", "reset"]  # …and on the target's

            for _ in range(3):
                await _assert_new_connection_reset(proxy)
            assert proxy.refused_while_cut == 3
            assert proxy.accepted == 2  # nothing reached the target while cut
            assert len(echo.endings) == 2

            proxy.cut()  # cutting again changes nothing and records no event
            proxy.restore()
            proxy.restore()
            third = await _round_trip(proxy, b"back")
            assert (proxy.accepted, proxy.active, proxy.cut_connections) == (3, 1, 2)
            assert [kind for _, kind in proxy.events] == ["cut", "restore"]
        # stop() resets what is still open.
        await _assert_reset(*third)


async def test_restore_before_the_timer_sets_the_event_and_cancels_the_timer() -> None:
    async with echo_server() as echo:
        with TcpFaultProxy("127.0.0.1", echo.port) as proxy:
            restored = proxy.cut_for(60)
            assert proxy.is_cut and not restored.is_set()
            proxy.restore()
            assert restored.is_set() and not proxy.is_cut
            longer = proxy.cut_for(60)
            proxy.cut()  # a later cut replaces the timer; the event waits for the restore
            assert not longer.is_set()
            proxy.restore()
            assert longer.is_set()
            _, writer = await _round_trip(proxy)
            writer.close()
            assert [kind for _, kind in proxy.events] == ["cut", "restore", "cut", "restore"]


async def test_a_target_that_refuses_is_passed_on_as_a_reset() -> None:
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        with TcpFaultProxy("127.0.0.1", port) as proxy:
            await _assert_new_connection_reset(proxy)
            assert (proxy.accepted, proxy.active) == (1, 0)


def test_calls_need_a_started_proxy() -> None:
    proxy = TcpFaultProxy("127.0.0.1", 9)
    with pytest.raises(RuntimeError):
        proxy.cut()
    with pytest.raises(RuntimeError):
        _ = proxy.port
    proxy.stop()  # stopping a proxy that never started is harmless
