"""A TCP proxy that can cut its connections on demand, for fault tests and the chaos bench.

ghapp must survive losing its database: a network partition, a failover or a PostgreSQL
restart drops every open connection at once and refuses new ones for a while. Restarting the
machine's PostgreSQL service to test that is slow, needs privileges and disturbs every other
test using the server, so instead ghapp is pointed at a :class:`TcpFaultProxy` in front of
PostgreSQL (or anything else that speaks TCP) and the proxy does the cutting:

* :meth:`TcpFaultProxy.cut` resets every proxied connection, both sides, with a TCP RST
  (``SO_LINGER`` 0 before closing) so clients see ``ECONNRESET`` as they do when the server's
  process dies or a firewall drops the link, not the clean EOF of an orderly shutdown; until
  :meth:`TcpFaultProxy.restore`, every new connection is reset as soon as it is accepted;
* :meth:`TcpFaultProxy.cut_for` cuts now and restores on a timer, without blocking the caller.

While not cut, bytes are copied unchanged in both directions (half-closes included), so the
proxy is invisible to the protocol it carries. The proxy runs its own event loop in a daemon
thread: it works the same from synchronous code, from inside a test's running event loop and
for other processes, which simply connect to :attr:`TcpFaultProxy.port`.

    with TcpFaultProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        ...
        proxy.cut()  # the database "goes away"
        ...
        proxy.restore()  # and comes back
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Literal, TypeVar

__all__ = ["TcpFaultProxy"]

T = TypeVar("T")
Change = Literal["cut", "restore"]

_CHUNK = 64 * 1024
# l_onoff=1, l_linger=0: close() discards unsent data and sends RST instead of FIN.
_LINGER_ZERO = struct.pack("ii", 1, 0)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close abruptly with a TCP RST, so the peer gets ECONNRESET rather than a clean EOF."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already gone: nothing left to reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    writer.transport.abort()


async def _closed(writer: asyncio.StreamWriter) -> None:
    """Wait until the socket is really closed (the RST is sent when the fd is closed)."""
    with contextlib.suppress(OSError):  # it re-raises what the connection died of
        await writer.wait_closed()


class _Link:
    """One proxied connection: the client's side and, once connected, the target's."""

    __slots__ = ("client", "severed", "upstream")

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.severed = False

    def writers(self) -> list[asyncio.StreamWriter]:
        return [self.client] if self.upstream is None else [self.client, self.upstream]


class TcpFaultProxy:
    """Forward ``listen_host:listen_port`` to ``target_host:target_port``, cuttable on demand.

    ``listen_port=0`` picks a free port; read it from :attr:`port` after :meth:`start`.
    :meth:`cut`, :meth:`restore` and :meth:`cut_for` may be called from any thread other than
    the proxy's own and return once the change is in effect.

    Counters, for assertions and the chaos bench's figures (written only by the proxy's thread):

    * ``accepted``: connections taken and proxied (attempted to the target) while not cut;
    * ``refused_while_cut``: connections reset on arrival because the proxy was cut;
    * ``cut_connections``: live connections that cuts closed;
    * ``active``: connections being proxied now;
    * ``events``: ``(time.monotonic(), "cut" | "restore")`` for every change of state.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.accepted = 0
        self.refused_while_cut = 0
        self.cut_connections = 0
        self.events: list[tuple[float, Change]] = []
        self._port: int | None = None
        self._is_cut = False
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._restore_timer: asyncio.TimerHandle | None = None
        self._restored_events: list[threading.Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # == life cycle =========================================================================

    def start(self, timeout: float = 10.0) -> TcpFaultProxy:
        """Start the proxy's thread and return once it is listening (on :attr:`port`)."""
        if self._thread is not None:
            raise RuntimeError("this proxy was already started")
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"tcpfault-{self.target_port}", daemon=True
        )
        self._thread.start()
        try:
            ready.result(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, reset every connection still open and join the proxy's thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: the thread is ending
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("the TCP fault proxy did not stop")
        self._thread = None

    def __enter__(self) -> TcpFaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the proxy listens on (the real one when ``listen_port`` was 0)."""
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def active(self) -> int:
        """How many connections are being proxied right now."""
        return len(self._links)

    @property
    def is_cut(self) -> bool:
        """Whether connections are being cut now (between a cut and the next restore)."""
        return self._is_cut

    # == faults =============================================================================

    def cut(self) -> None:
        """Cut the target's connections the way a network partition or a PostgreSQL restart
        does, without touching the target itself: reset every live connection (both sides)
        and reset new ones on arrival until :meth:`restore`. Returns once the sockets are
        closed, so a client's next read or write fails."""
        self._call(self._cut())

    def restore(self) -> None:
        """Let connections through again (existing ones stay closed: clients must reconnect,
        as after a real outage). Cancels a pending :meth:`cut_for` timer and sets its event."""
        self._call(self._restore())

    def cut_for(self, seconds: float) -> threading.Event:
        """Cut now and restore after ``seconds`` from the proxy's own timer, without blocking
        the caller (beyond applying the cut). The returned event is set at the next restore,
        whether this timer's or an explicit :meth:`restore`; a later :meth:`cut` or
        :meth:`cut_for` replaces the timer (the latest call decides when the outage ends)."""
        restored = threading.Event()
        self._call(self._cut(restore_after=seconds, restored=restored))
        return restored

    # == the proxy's thread =================================================================

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        loop = self._loop
        if loop is None or self._thread is None:
            coro.close()
            raise RuntimeError("the proxy is not started")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("call this from another thread than the proxy's own")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as exc:  # a failure to bind reaches start() through `ready`
            if not ready.done():
                ready.set_exception(exc)
        finally:
            self._loop = None

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._handle, self.listen_host, self.listen_port)
        self._port = server.sockets[0].getsockname()[1]
        ready.set_result(None)
        try:
            await self._stopping.wait()
        finally:
            server.close()
            if self._restore_timer is not None:
                self._restore_timer.cancel()
            await self._sever_all()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()

    async def _cut(
        self, restore_after: float | None = None, restored: threading.Event | None = None
    ) -> None:
        if not self._is_cut:
            self._is_cut = True
            self.events.append((time.monotonic(), "cut"))
        if self._restore_timer is not None:
            self._restore_timer.cancel()
            self._restore_timer = None
        if restored is not None:
            self._restored_events.append(restored)
        if restore_after is not None:
            loop = asyncio.get_running_loop()
            self._restore_timer = loop.call_later(restore_after, self._restore_now)
        self.cut_connections += await self._sever_all()

    async def _restore(self) -> None:
        self._restore_now()

    def _restore_now(self) -> None:
        if self._restore_timer is not None:
            self._restore_timer.cancel()
            self._restore_timer = None
        if self._is_cut:
            self._is_cut = False
            self.events.append((time.monotonic(), "restore"))
        for restored in self._restored_events:
            restored.set()
        self._restored_events.clear()

    async def _sever_all(self) -> int:
        """Reset every live connection and wait until their sockets are closed."""
        links = list(self._links)
        writers = [writer for link in links for writer in self._sever(link)]
        await asyncio.gather(*(_closed(writer) for writer in writers))
        return len(links)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._is_cut:
            self.refused_while_cut += 1
            _reset(writer)
            return
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        link = _Link(writer)
        self._links.add(link)
        try:
            # stop() cancels what is still running; ending quietly keeps asyncio's stream
            # machinery from logging the cancellation as an unhandled error.
            with contextlib.suppress(asyncio.CancelledError):
                await self._proxy(link, reader)
        finally:
            self._handlers.discard(task)
            if link in self._links:  # an error or cancellation mid-way: don't leave it half-open
                self._sever(link)

    async def _proxy(self, link: _Link, client_reader: asyncio.StreamReader) -> None:
        try:
            target_reader, target = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            _reset(link.client)  # the target refuses: so does the proxy
            return
        link.upstream = target
        if link.severed:  # cut while connecting to the target
            _reset(target)
            return
        results = await asyncio.gather(
            self._pump(link, client_reader, target), self._pump(link, target_reader, link.client)
        )
        if all(results):  # both directions ended with EOF: close politely
            self._links.discard(link)
            for side in link.writers():
                side.close()

    def _sever(self, link: _Link) -> list[asyncio.StreamWriter]:
        """Reset both sides of ``link`` now; return their writers to wait for the close."""
        self._links.discard(link)
        link.severed = True
        writers = link.writers()
        for writer in writers:
            if not writer.transport.is_closing():
                _reset(writer)
        return writers

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Copy until EOF, then pass the half-close on. If either side fails or was reset,
        reset both (a real server's RST reaches the client as an RST) and return False."""
        try:
            while data := await reader.read(_CHUNK):
                if writer.is_closing():
                    break
                writer.write(data)
                await writer.drain()
            else:
                if not writer.is_closing() and not link.severed:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return True
        except OSError:
            pass
        self._sever(link)
        return False
