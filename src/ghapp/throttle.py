"""Slowing down token guessing: wrong tokens are counted per client, and past a limit the
client is answered ``429`` with ``Retry-After`` until its window ends.

Counts live in this process's memory (a bounded cache), so with several replicas a client
gets the limit once per replica: enough to make guessing 256-bit tokens pointless and to
keep a flood of bad sign-ins from costing a database read each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cachetools import LRUCache

from ghapp.clock import Clock

MAX_CLIENTS = 10_000  # the oldest clients are forgotten first: memory stays bounded


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many wrong tokens: try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Window:
    started: float
    failures: int


class Throttle:
    def __init__(self, clock: Clock, limit: int, window_seconds: float) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window_seconds
        self._clients: LRUCache[str, _Window] = LRUCache(MAX_CLIENTS)

    def check(self, client: str) -> None:
        """Raise :class:`Throttled` while ``client`` has used up its wrong tokens."""
        window = self._clients.get(client)
        if window is None or window.failures < self.limit:
            return
        left = window.started + self.window - self._now()
        if left > 0:
            raise Throttled(max(1, math.ceil(left)))

    def failed(self, client: str) -> None:
        now = self._now()
        window = self._clients.get(client)
        if window is None or now >= window.started + self.window:
            self._clients[client] = _Window(now, 1)
        else:
            window.failures += 1

    def _now(self) -> float:
        return self.clock.now().timestamp()


def client_of(request: object) -> str:
    """The client's address as the server saw it (uvicorn applies trusted proxy headers)."""
    client = getattr(request, "client", None)
    return client.host if client is not None else "unknown"
