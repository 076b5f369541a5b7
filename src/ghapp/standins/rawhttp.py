"""One raw HTTP/1.1 connection for tests and benches that play a misbehaving client.

A slow drip, a body cut off halfway or a header that never ends cannot be sent with an
HTTP library. This protocol writes exactly the bytes it is given, when the socket takes
more (flow control is honoured), and keeps whatever comes back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawConnection(asyncio.Protocol):
    received: bytearray = field(default_factory=bytearray)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    writable: asyncio.Event = field(default_factory=asyncio.Event)
    transport: Any = None

    @classmethod
    async def connect(cls, host: str, port: int) -> Any:
        """A connected instance of ``cls``."""
        _, connection = await asyncio.get_running_loop().create_connection(cls, host, port)
        return connection

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        self.received += data
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        # Wake every waiter: nothing more will arrive, and nothing more can be written.
        self.closed.set()
        self.arrived.set()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()
