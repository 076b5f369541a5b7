"""A forward HTTP proxy on loopback, for tests that check ghapp goes through the proxy its
environment names (``HTTP_PROXY``), as a company's egress proxy would see it.

Each request arrives in absolute form (``GET http://host:port/path HTTP/1.1``); the proxy
records the target, sends the request on to it in origin form over a new connection, asks
that connection to close after the answer, and pipes the answer back, then closes the
client's connection too (a client may not reuse it, which keeps the proxy simple and
every request recorded). Plain HTTP only: the stand-ins it fronts speak nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024


class ForwardProxy:
    def __init__(self) -> None:
        self.targets: list[str] = []  # "METHOD http://host:port/path", in arrival order

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Listen on a free loopback port; yield the proxy's URL."""
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.close()
            await server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD:
                return
            await self._forward(head, reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _forward(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        self.targets.append(f"{method} {target}")
        parts = urlsplit(target)
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        headers = [
            line
            for line in header_lines
            if line and not line.lower().startswith(("connection:", "proxy-"))
        ]
        length = next(
            (
                int(line.split(":", 1)[1])
                for line in headers
                if line.lower().startswith("content-length:")
            ),
            0,
        )
        body = await reader.readexactly(length) if length else b""
        upstream_reader, upstream_writer = await asyncio.open_connection(
            parts.hostname, parts.port or 80
        )
        try:
            lines = [f"{method} {path} {version}", *headers, "Connection: close", "", ""]
            upstream_writer.write("\r\n".join(lines).encode("latin-1") + body)
            await upstream_writer.drain()
            while chunk := await upstream_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            upstream_writer.close()
