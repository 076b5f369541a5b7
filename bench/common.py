"""What the benches share: a free loopback port, percentiles, and the GitHub stand-in noting
when each issue's tracking comment first says "finished"."""

from __future__ import annotations

import socket
import time
from typing import Any

from ghapp.standins.github import GitHubStandIn


class TimedGitHub(GitHubStandIn):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finished: dict[int, float] = {}

    def _update_comment(self, call: Any) -> Any:
        reply = super()._update_comment(call)
        body = call.body().get("body") or ""
        if "finished" in body and "✅" in body:
            number = self._comment(call)["number"]
            self.finished.setdefault(int(number), time.time())
        return reply


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]
