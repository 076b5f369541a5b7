"""The app's identity on GitHub: JWTs, installation tokens and per-installation clients.

Installation tokens live an hour; they are cached (cachetools) until five minutes before
``expires_at``, so a busy installation asks for one token an hour, not one per call. Each
installation gets one HTTP client whose transport handles retries and rate limits and
serialises mutating calls (see ``transport``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from cachetools import TLRUCache
from gidgethub import apps
from gidgethub.httpx import GitHubAPI

from ghapp.clock import Clock
from ghapp.github.proxies import EnvironmentProxies
from ghapp.github.transport import RetryPolicy, RetryTransport
from ghapp.settings import Settings

USER_AGENT = "ghapp"
TOKEN_MARGIN = timedelta(minutes=5)
# What gidgethub asks for by default; GitHub documents ``application/vnd.github+json``.
OLD_ACCEPT = "application/vnd.github.v3+json"
MEDIA_TYPE = "application/vnd.github+json"


class NotConfigured(RuntimeError):
    """The app id or private key is missing."""


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: datetime


class GitHubApp:
    def __init__(self, settings: Settings, clock: Clock, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self._tokens: TLRUCache[int, InstallationToken] = TLRUCache(
            maxsize=10_000,
            ttu=lambda _key, value, _now: (value.expires_at - TOKEN_MARGIN).timestamp(),
            timer=lambda: self.clock.now().timestamp(),
        )
        self._token_locks: dict[int, asyncio.Lock] = {}
        self._clients: dict[int | None, httpx.AsyncClient] = {}
        self.rate_limit_remaining: dict[int | None, int] = {}

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    # -- identities --------------------------------------------------------------------

    def jwt(self) -> str:
        return apps.get_jwt(app_id=str(self.settings.app_id), private_key=self._private_key())

    def _private_key(self) -> str:
        problem = self.settings.github_app_problem()
        pem = None if problem else self.settings.private_key_pem()
        if problem or pem is None:
            raise NotConfigured(problem or "the GitHub App is not configured")
        return pem

    def as_app(self) -> GitHubAPI:
        """A client that authenticates as the app itself (pass ``jwt=app.jwt()``)."""
        return GitHubAPI(self._client(None), USER_AGENT, base_url=self.settings.github_api_url)

    async def token(self, installation_id: int) -> str:
        cached = self._tokens.get(installation_id)
        if cached is not None:
            return cached.token
        lock = self._token_locks.setdefault(installation_id, asyncio.Lock())
        async with lock:  # one request per installation, however many callers wait
            cached = self._tokens.get(installation_id)
            if cached is None:
                cached = await self._new_token(installation_id)
                self._tokens[installation_id] = cached
        return cached.token

    async def for_installation(self, installation_id: int) -> GitHubAPI:
        token = await self.token(installation_id)
        return GitHubAPI(
            self._client(installation_id),
            USER_AGENT,
            oauth_token=token,
            base_url=self.settings.github_api_url,
        )

    async def installation_of(self, full_name: str) -> int:
        """The installation of a repository (for events that carried none)."""
        data = await self.as_app().getitem(f"/repos/{full_name}/installation", jwt=self.jwt())
        return int(data["id"])

    # -- internals ---------------------------------------------------------------------

    async def _new_token(self, installation_id: int) -> InstallationToken:
        pem = self._private_key()
        data: dict[str, Any] = await apps.get_installation_access_token(
            self.as_app(),
            installation_id=str(installation_id),
            app_id=str(self.settings.app_id),
            private_key=pem,
        )
        expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
        return InstallationToken(data["token"], expires)

    def _client(self, installation_id: int | None) -> httpx.AsyncClient:
        client = self._clients.get(installation_id)
        if client is None:

            def remember(response: httpx.Response) -> None:
                remaining = response.headers.get("x-ratelimit-remaining")
                if remaining is not None and remaining.isdigit():
                    self.rate_limit_remaining[installation_id] = int(remaining)

            transport = RetryTransport(
                EnvironmentProxies(), self.clock, self.policy, on_response=remember
            )
            client = httpx.AsyncClient(
                transport=transport,
                timeout=30.0,
                event_hooks={"request": [documented_headers(self.settings.github_api_version)]},
            )
            self._clients[installation_id] = client
        return client


def documented_headers(version: str) -> Callable[[httpx.Request], Awaitable[None]]:
    """A request hook that sends the headers GitHub documents on every call: the media
    type ``application/vnd.github+json`` (gidgethub still asks for the older ``v3`` one;
    a call asking for another media type, such as raw contents, keeps it) and the REST API
    version the deployment pins (``X-GitHub-Api-Version``), so a new default on GitHub's
    side cannot change the answers under us."""

    async def hook(request: httpx.Request) -> None:
        if request.headers.get("accept", OLD_ACCEPT) == OLD_ACCEPT:
            request.headers["accept"] = MEDIA_TYPE
        request.headers["x-github-api-version"] = version

    return hook
