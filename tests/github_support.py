"""The GitHub client against the stand-in: ``github`` (a GitHub stand-in with installation 11
and issue 1 of ``REPO``), ``clock`` (a ``SkippingClock``) and ``app`` (ghapp's client to it).

Registered as a plugin in ``conftest.py``, so test modules use the fixtures by name.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ghapp.clock import FakeClock
from ghapp.github.app import GitHubApp
from ghapp.github.transport import RetryPolicy
from ghapp.settings import Settings
from ghapp.standins.github import GitHubStandIn

REPO = "octo/hello"


class SkippingClock(FakeClock):
    """Sleeping moves this clock forward at once and is written down (no real waiting)."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))
        self.slept: list[float] = []

    async def sleep_until(self, when, wake) -> bool:
        if when is not None and when > self.now():
            self.slept.append(round((when - self.now()).total_seconds(), 3))
            self.set(when)
        return False


@pytest.fixture
async def github():
    standin = GitHubStandIn(app_id=4242)
    standin.add_installation(11, "octo")
    standin.add_repo(REPO, 11)
    standin.add_issue(REPO, 1, title="It broke")
    async with standin.serve() as base_url:
        standin.base_url = base_url
        yield standin


@pytest.fixture
def clock() -> SkippingClock:
    return SkippingClock()


@pytest.fixture
async def app(github, clock):
    settings = Settings(
        _env_file=None,
        app_id=github.app_id,
        private_key=github.private_key_pem,
        github_api_url=github.base_url,
    )
    client = GitHubApp(settings, clock, RetryPolicy(attempts=4, base_delay=0.5))
    yield client
    await client.aclose()
