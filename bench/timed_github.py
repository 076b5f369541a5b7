"""The GitHub stand-in, noting when each issue's tracking comment first says "finished"
(shared by the benches that time sessions end to end)."""

from __future__ import annotations

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
