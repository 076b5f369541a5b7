"""The GitHub client against the stand-in: app JWT, cached tokens, retries, rate limits."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from gidgethub import BadRequest, GitHubBroken
from pydantic import ValidationError

from ghapp.github.app import GitHubApp
from ghapp.github.transport import RateLimited, RetryTransport
from ghapp.settings import Settings
from ghapp.standins.httpproxy import ForwardProxy
from tests.github_support import REPO, SkippingClock


async def test_token_is_fetched_with_a_jwt_and_cached_until_near_expiry(app, github, clock) -> None:
    gh = await app.for_installation(11)
    issue = await gh.getitem(f"/repos/{REPO}/issues/1")
    assert issue["title"] == "It broke"
    await (await app.for_installation(11)).getitem(f"/repos/{REPO}/issues/1")
    exchanges = github.find_requests("POST", r"/access_tokens$")
    assert len(exchanges) == 1 and exchanges[0].auth == "app-jwt"
    reads = github.find_requests("GET", r"/issues/1$")
    assert [r.auth for r in reads] == ["installation-token"] * 2
    clock.advance(timedelta(minutes=56))  # within 5 minutes of the 1 h expiry
    await (await app.for_installation(11)).getitem(f"/repos/{REPO}/issues/1")
    assert len(github.find_requests("POST", r"/access_tokens$")) == 2


async def test_every_call_sends_the_documented_media_type_and_api_version(app, github) -> None:
    gh = await app.for_installation(11)
    await gh.getitem(f"/repos/{REPO}/issues/1")
    await gh.getitem(f"/repos/{REPO}/issues/1", accept="application/vnd.github.full+json")
    assert len(github.requests) == 3  # the token exchange, the issue twice
    assert [r.headers["x-github-api-version"] for r in github.requests] == ["2022-11-28"] * 3
    accepts = [r.headers["accept"] for r in github.requests]
    assert accepts == [*["application/vnd.github+json"] * 2, "application/vnd.github.full+json"]


async def test_the_api_version_is_a_setting(github, clock) -> None:
    settings = Settings(
        _env_file=None,
        app_id=github.app_id,
        private_key=github.private_key_pem,
        github_api_url=github.base_url,
        github_api_version="2026-03-10",
    )
    client = GitHubApp(settings, clock)
    try:
        await (await client.for_installation(11)).getitem(f"/repos/{REPO}/issues/1")
    finally:
        await client.aclose()
    assert {r.headers["x-github-api-version"] for r in github.requests} == {"2026-03-10"}


async def test_concurrent_callers_share_one_token_request(app, github) -> None:
    await asyncio.gather(*(app.token(11) for _ in range(10)))
    assert len(github.find_requests("POST", r"/access_tokens$")) == 1


async def test_installation_is_looked_up_for_a_repository(app) -> None:
    assert await app.installation_of(REPO) == 11


async def test_5xx_is_retried_with_backoff(app, github, clock) -> None:
    github.inject("GET", r"/issues/1$", 502, times=2)
    gh = await app.for_installation(11)
    assert (await gh.getitem(f"/repos/{REPO}/issues/1"))["number"] == 1
    assert [r.status for r in github.find_requests("GET", r"/issues/1$")] == [502, 502, 200]
    assert len(clock.slept) == 2 and all(0 <= s <= 1.0 for s in clock.slept)


async def test_retries_run_out_and_the_error_surfaces(app, github) -> None:
    github.inject("GET", r"/issues/1$", 503, times=10)
    gh = await app.for_installation(11)
    with pytest.raises(GitHubBroken):
        await gh.getitem(f"/repos/{REPO}/issues/1")
    assert len(github.find_requests("GET", r"/issues/1$")) == 4


async def test_429_waits_for_retry_after(app, github, clock) -> None:
    github.inject("POST", r"/comments$", 429, headers={"Retry-After": "7"})
    gh = await app.for_installation(11)
    comment = await gh.post(f"/repos/{REPO}/issues/1/comments", data={"body": "hi"})
    assert comment["body"] == "hi"
    assert clock.slept == [7.0]
    assert len(github.comments_on(REPO, 1)) == 1  # posted once, not twice


async def test_secondary_rate_limit_waits_then_succeeds(app, github, clock) -> None:
    github.inject_secondary_rate_limit("POST", r"/comments$", retry_after=3)
    gh = await app.for_installation(11)
    await gh.post(f"/repos/{REPO}/issues/1/comments", data={"body": "hi"})
    assert clock.slept == [3.0]


async def test_primary_rate_limit_waits_for_the_reset_if_soon(app, github, clock) -> None:
    github.inject_primary_rate_limit("GET", r"/issues/1$", reset_in=60)
    gh = await app.for_installation(11)
    await gh.getitem(f"/repos/{REPO}/issues/1")
    assert len(clock.slept) == 1 and 55 <= clock.slept[0] <= 62


async def test_primary_rate_limit_far_away_fails_clearly(app, github) -> None:
    github.inject_primary_rate_limit("GET", r"/issues/1$", reset_in=3600)
    gh = await app.for_installation(11)
    with pytest.raises(RateLimited, match="resets in"):
        await gh.getitem(f"/repos/{REPO}/issues/1")


async def test_other_4xx_are_not_retried(app, github, clock) -> None:
    gh = await app.for_installation(11)
    with pytest.raises(BadRequest):
        await gh.getitem(f"/repos/{REPO}/issues/999")
    assert len(github.find_requests("GET", r"/issues/999$")) == 1 and clock.slept == []


async def test_rate_limit_remaining_is_remembered_per_installation(app) -> None:
    gh = await app.for_installation(11)
    await gh.getitem(f"/repos/{REPO}/issues/1")
    assert 0 < app.rate_limit_remaining[11] < 5000


async def test_mutating_calls_are_serialised_and_reads_are_not() -> None:
    in_flight = {"POST": 0, "GET": 0}
    peak = {"POST": 0, "GET": 0}
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        in_flight[request.method] += 1
        peak[request.method] = max(peak[request.method], in_flight[request.method])
        await release.wait()
        in_flight[request.method] -= 1
        return httpx.Response(200, json={})

    transport = RetryTransport(httpx.MockTransport(handler), SkippingClock())
    async with httpx.AsyncClient(transport=transport, base_url="http://gh") as client:
        calls = [client.post("/x") for _ in range(3)] + [client.get("/y") for _ in range(3)]
        tasks = [asyncio.create_task(c) for c in calls]
        while in_flight["GET"] < 3:
            await asyncio.sleep(0)  # let the requests reach the handler; no time passes
        release.set()
        await asyncio.gather(*tasks)
    assert peak == {"POST": 1, "GET": 3}


@pytest.fixture
def proxied(monkeypatch):
    """Only the proxy variables the test sets (the machine's own must not interfere)."""
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.mark.parametrize("bypassed", [False, True])
async def test_calls_go_through_the_proxy_the_environment_names(
    github, clock, proxied, bypassed
) -> None:
    proxy = ForwardProxy()
    async with proxy.serve() as proxy_url:
        proxied.setenv("http_proxy", proxy_url)
        if bypassed:
            proxied.setenv("no_proxy", "localhost,127.0.0.1")
        settings = Settings(
            _env_file=None,
            app_id=github.app_id,
            private_key=github.private_key_pem,
            github_api_url=github.base_url,
        )
        client = GitHubApp(settings, clock)
        try:
            gh = await client.for_installation(11)
            assert (await gh.getitem(f"/repos/{REPO}/issues/1"))["number"] == 1
        finally:
            await client.aclose()
    through = [
        f"POST {github.base_url}/app/installations/11/access_tokens",
        f"GET {github.base_url}/repos/{REPO}/issues/1",
    ]
    assert proxy.targets == ([] if bypassed else through)
    assert len(github.requests) == 2


def test_an_api_version_that_is_not_a_date_is_refused() -> None:
    with pytest.raises(ValidationError, match="github_api_version"):
        Settings(_env_file=None, github_api_version="latest")
