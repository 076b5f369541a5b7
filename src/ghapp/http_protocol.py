"""uvicorn's HTTP protocol with bounds on a request's head: its size and its time.

The bodies are bounded where they are read (``ghapp.bodies``); what comes before them is
uvicorn's. With httptools (uvicorn's choice when it is installed, as here), llhttp keeps a
URL or a header however long it grows: one 200 MB header line took the server's memory
from 32 MB to 307 MB. And nothing limits how long a head may take: a connection that sends
nothing, or a header byte now and then, stays open for ever. So a head larger than
:data:`MAX_HEAD_BYTES` is answered ``431`` and one not complete within the deadline ``408``,
and the connection is closed either way. (uvicorn's h11 protocol already refuses a head
over 16 KiB; it is used without the deadline where httptools is missing.)
"""

from __future__ import annotations

import asyncio
from typing import Any

MAX_HEAD_BYTES = 64 * 1024  # GitHub's deliveries send ~1 KiB of headers, a browser ~2-8 KiB


def bounded_http_protocol(head_timeout_s: float) -> type[asyncio.Protocol] | str:
    """The protocol class for ``uvicorn.Config(http=...)``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # no httptools: h11 bounds the head's size itself
        return "h11"

    class BoundedHead(HttpToolsProtocol):
        """A head is what arrives from a request's first byte (or the connection's start)
        until its headers are complete; the keep-alive wait between requests is uvicorn's."""

        _in_head = False
        _head_bytes = 0
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._start_head()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._start_head()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._stop_timer()
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # Counted after parsing: bytes that completed a head (and began a body) in the
            # same read are not the head's.
            if self._in_head:
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._refuse(431, "Request Header Fields Too Large")

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            super().connection_lost(exc)

        def _start_head(self) -> None:
            self._in_head = True
            self._head_bytes = 0
            self._stop_timer()
            self._head_timer = self.loop.call_later(head_timeout_s, self._head_too_slow)

        def _stop_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_too_slow(self) -> None:
            self._head_timer = None
            if not self._in_head:
                return
            if self.cycle is not None and not self.cycle.response_complete:
                # A pipelined request waits behind one being answered: not yet its turn.
                self._head_timer = self.loop.call_later(head_timeout_s, self._head_too_slow)
                return
            self._refuse(408, "Request Timeout")

        def _refuse(self, status: int, phrase: str) -> None:
            self._in_head = False
            self._stop_timer()
            if self.transport.is_closing():
                return
            body = f"{phrase}\n".encode()
            self.transport.write(
                f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
            self.transport.close()

    return BoundedHead
