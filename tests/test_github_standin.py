"""The GitHub stand-in answers like GitHub: auth, search, comments, limits, faults.

Everything goes over real HTTP on loopback (httpx, and gidgethub the way ghapp uses it).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gidgethub import BadRequest, RateLimitExceeded, apps
from gidgethub.httpx import GitHubAPI

from ghapp.standins.github import GitHubStandIn


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# The headers GitHub documents on every call (and the contract plugin expects), as ghapp's
# own client sends them.
DOCUMENTED = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
KEY = _pem()  # one key for the module: generating one per test is slow
OTHER_KEY = _pem()
APP_ID = 42
A, B = 100, 200  # installations


def app_jwt(
    *, iat: float | None = None, lifetime: int = 600, iss: Any = APP_ID, key: str = KEY
) -> str:
    """An app JWT; signed through PyJWS since ``jwt.encode`` insists on a string ``iss``,
    while GitHub accepts the app id as a number too."""
    issued = int(time.time()) - 60 if iat is None else int(iat)
    claims = {"iat": issued, "exp": issued + lifetime, "iss": iss}
    return jwt.PyJWS().encode(json.dumps(claims).encode(), key, algorithm="RS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_token(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


@dataclass
class Env:
    gh: GitHubStandIn
    base: str
    client: httpx.AsyncClient
    token: str  # installation A's
    token_b: str

    async def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=as_token(token or self.token), **kw)

    async def post(self, path: str, json: Any, token: str | None = None) -> httpx.Response:
        return await self.client.post(path, json=json, headers=as_token(token or self.token))

    async def patch(self, path: str, json: Any) -> httpx.Response:
        return await self.client.patch(path, json=json, headers=as_token(self.token))


def build_standin(**kw: Any) -> GitHubStandIn:
    gh = GitHubStandIn(app_id=APP_ID, private_key_pem=KEY, **kw)
    gh.add_installation(A, "acme", "Organization")
    gh.add_installation(B, "other")
    gh.add_repo("acme/widgets", A, repo_id=1)
    gh.add_repo("other/things", B, repo_id=2, private=True)
    return gh


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    gh = build_standin()
    async with gh.serve() as base, httpx.AsyncClient(base_url=base, headers=DOCUMENTED) as client:
        yield Env(gh, base, client, gh.issue_token(A), gh.issue_token(B))


def took(gh: GitHubStandIn, *problems: str) -> None:
    """The calls a test made against GitHub's description on purpose: each of ``problems``
    was recorded (and is taken back, so the contract plugin does not fail the test)."""
    taken = [str(v) for v in gh.take_violations()]
    for problem in problems:
        assert any(problem in v for v in taken), (problem, taken)


def numbers(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["number"] for item in response.json()["items"]]


# -- app JWTs ------------------------------------------------------------------------------


async def test_app_jwt_accepted(env: Env) -> None:
    response = await env.client.get("/app", headers=bearer(app_jwt()))
    assert response.status_code == 200
    assert response.json()["id"] == APP_ID
    assert response.json()["slug"] == "ghapp-standin"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["x-github-request-id"]
    gidgethub_jwt = apps.get_jwt(app_id=str(APP_ID), private_key=KEY)  # iss as a string
    assert (await env.client.get("/app", headers=bearer(gidgethub_jwt))).status_code == 200


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda: app_jwt(key=OTHER_KEY), "A JSON web token could not be decoded"),
        (lambda: app_jwt(iss=43), "A JSON web token could not be decoded"),
        (lambda: app_jwt(iat=time.time() - 700), "'Expiration time' claim ('exp') must be"),
        (lambda: app_jwt(lifetime=601), "'Expiration time' claim ('exp') is too far in the"),
        (lambda: app_jwt(iat=time.time() + 120), "'Issued at' claim ('iat') must be"),
        (lambda: "not.a.jwt", "A JSON web token could not be decoded"),
    ],
    ids=["bad-signature", "wrong-iss", "expired", "too-long", "iat-in-future", "garbage"],
)
async def test_app_jwt_refused(env: Env, token: Any, message: str) -> None:
    response = await env.client.get("/app", headers=bearer(token()))
    assert response.status_code == 401
    assert response.json()["message"].startswith(message)
    assert "documentation_url" in response.json()


async def test_wrong_or_missing_credentials(env: Env) -> None:
    no_auth = await env.client.get("/repos/acme/widgets")
    assert (no_auth.status_code, no_auth.json()["message"]) == (401, "Requires authentication")
    bad = await env.client.get("/repos/acme/widgets", headers=as_token("ghs_nope"))
    assert (bad.status_code, bad.json()["message"]) == (401, "Bad credentials")
    token_on_app = await env.client.get("/app", headers=bearer(env.token))
    assert token_on_app.status_code == 401
    jwt_on_repo = await env.client.get("/repos/acme/widgets", headers=bearer(app_jwt()))
    assert jwt_on_repo.status_code == 403
    assert jwt_on_repo.json()["message"] == "Resource not accessible by integration"


async def test_default_key_is_generated_and_verified() -> None:
    gh = GitHubStandIn()
    async with gh.serve() as base, httpx.AsyncClient(base_url=base, headers=DOCUMENTED) as client:
        good = app_jwt(iss=1, key=gh.private_key_pem)
        assert (await client.get("/app", headers=bearer(good))).status_code == 200
        assert (await client.get("/app", headers=bearer(app_jwt(iss=1)))).status_code == 401


# -- installation tokens -------------------------------------------------------------------


async def test_token_issued_and_scoped_to_its_installation(env: Env) -> None:
    response = await env.client.post(
        f"/app/installations/{A}/access_tokens", headers=bearer(app_jwt())
    )
    assert response.status_code == 201
    data = response.json()
    assert data["token"].startswith("ghs_")
    assert data["repository_selection"] == "all"
    assert data["permissions"]["issues"] == "write"
    assert data["expires_at"].endswith("Z")
    expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
    assert 3500 < (expires - datetime.now(UTC)).total_seconds() <= 3600
    token = data["token"]
    assert (await env.get("/repos/acme/widgets", token)).status_code == 200
    bearer_ok = await env.client.get("/repos/acme/widgets", headers=bearer(token))
    assert bearer_ok.status_code == 200
    foreign = await env.get("/repos/other/things", token)
    assert foreign.status_code == 403
    assert foreign.json()["message"] == "Resource not accessible by integration"
    assert (await env.get("/repos/other/things", env.token_b)).status_code == 200
    assert (await env.get("/repos/acme/nothing", token)).status_code == 404
    unknown = await env.client.post(
        "/app/installations/999/access_tokens", headers=bearer(app_jwt())
    )
    assert unknown.status_code == 404


async def test_repo_installation_lookup_with_jwt(env: Env) -> None:
    found = await env.client.get("/repos/acme/widgets/installation", headers=bearer(app_jwt()))
    assert found.status_code == 200
    assert found.json()["id"] == A
    assert found.json()["account"]["login"] == "acme"
    assert found.json()["account"]["type"] == "Organization"
    missing = await env.client.get("/repos/acme/nope/installation", headers=bearer(app_jwt()))
    assert missing.status_code == 404
    listed = await env.client.get("/app/installations", headers=bearer(app_jwt()))
    assert [i["id"] for i in listed.json()] == [A, B]


async def test_expired_tokens_get_bad_credentials(env: Env) -> None:
    assert (await env.get("/repos/acme/widgets")).status_code == 200
    env.gh.expire_tokens()
    response = await env.get("/repos/acme/widgets")
    assert (response.status_code, response.json()["message"]) == (401, "Bad credentials")
    fresh = env.gh.issue_token(A)
    assert (await env.get("/repos/acme/widgets", fresh)).status_code == 200


async def test_gidgethub_obtains_a_token_as_ghapp_does(env: Env) -> None:
    async with httpx.AsyncClient(headers=DOCUMENTED) as client:
        gh = GitHubAPI(client, "ghapp", base_url=env.base)
        data = await apps.get_installation_access_token(
            gh, installation_id=str(A), app_id=str(APP_ID), private_key=KEY
        )
        assert data["token"].startswith("ghs_")
        repo = await gh.getitem("/repos/acme/widgets", oauth_token=data["token"])
        assert repo["full_name"] == "acme/widgets"
        assert gh.rate_limit is not None and gh.rate_limit.limit == 5000
    kinds = [(r.method, r.path, r.auth, r.installation_id) for r in env.gh.requests]
    assert kinds == [
        ("POST", f"/app/installations/{A}/access_tokens", "app-jwt", None),
        ("GET", "/repos/acme/widgets", "installation-token", A),
    ]


async def test_path_prefix_as_on_github_enterprise() -> None:
    gh = build_standin(path_prefix="/api/v3")
    async with gh.serve() as base, httpx.AsyncClient(headers=DOCUMENTED) as client:
        assert base.endswith("/api/v3")
        api = GitHubAPI(client, "ghapp", base_url=base)
        data = await apps.get_installation_access_token(
            api, installation_id=str(A), app_id=str(APP_ID), private_key=KEY
        )
        assert (await api.getitem("/repos/acme/widgets", oauth_token=data["token"]))["id"] == 1
        root = base.removesuffix("/api/v3")
        assert (await client.get(f"{root}/app", headers=bearer(app_jwt()))).status_code == 404
        took(gh, "GET /app -> 404: outside /api/v3")
    assert [(r.path, r.status) for r in gh.requests[-2:]] == [
        ("/repos/acme/widgets", 200),
        ("/app", 404),  # outside the prefix: recorded with its full path
    ]


# -- search --------------------------------------------------------------------------------


def seed_search(gh: GitHubStandIn) -> None:
    add = gh.add_issue
    add(
        "acme/widgets",
        title="Crash on start",
        labels=["bug"],
        user="alice",
        created_at="2024-01-10T10:00:00Z",
        updated_at="2024-02-01T00:00:00Z",
        assignees=["bob"],
    )
    add(
        "acme/widgets",
        title="Add dark mode",
        labels=["enhancement", "help wanted"],
        user="bob",
        created_at="2024-01-20T00:00:00Z",
        updated_at="2024-01-21T00:00:00Z",
    )
    add(
        "acme/widgets",
        title="Old bug",
        labels=["bug", "wontfix"],
        user="alice",
        state="closed",
        created_at="2023-12-01T00:00:00Z",
        updated_at="2023-12-05T00:00:00Z",
    )
    add(
        "acme/widgets",
        title="Fix crash",
        labels=["bug"],
        user="carol",
        pull=True,
        created_at="2024-01-15T00:00:00Z",
        updated_at="2024-01-16T00:00:00Z",
    )
    add(
        "acme/widgets",
        title="Docs",
        user="dave",
        pull=True,
        state="closed",
        created_at="2024-02-10T00:00:00Z",
        updated_at="2024-02-11T00:00:00Z",
        assignees=["alice"],
    )
    add("other/things", title="Their bug", labels=["bug"], created_at="2024-01-12T00:00:00Z")


@pytest.mark.parametrize(
    ("qualifiers", "expected"),
    [
        ("", [5, 4, 3, 2, 1]),
        ("is:issue", [3, 2, 1]),
        ("is:pr", [5, 4]),
        ("is:open", [4, 2, 1]),
        ("is:closed", [5, 3]),
        ("is:issue is:open label:bug", [1]),
        ("label:bug", [4, 3, 1]),
        ("label:bug,enhancement", [4, 3, 2, 1]),
        ("label:bug label:wontfix", [3]),
        ('label:"help wanted"', [2]),
        ("label:BUG", [4, 3, 1]),
        ("-label:bug", [5, 2]),
        ("no:label", [5]),
        ("author:alice", [3, 1]),
        ("-author:alice", [5, 4, 2]),
        ("assignee:bob", [1]),
        ("no:assignee", [4, 3, 2]),
        ("-no:assignee", [5, 1]),
        ("created:>2024-01-15", [5, 2]),
        ("created:>=2024-01-15", [5, 4, 2]),
        ("created:<2024-01-10", [3]),
        ("created:<=2024-01-10", [3, 1]),
        ("created:2024-01-10..2024-01-20", [4, 2, 1]),
        ("created:2024-01-16..*", [5, 2]),
        ("created:2024-01-10", [1]),
        ("created:>2024-01-10T09:00:00Z", [5, 4, 2, 1]),
        ("created:>2024-01-10T11:00:00Z", [5, 4, 2]),
        ("updated:>2024-01-21T00:00:00Z", [5, 1]),
        ("updated:>=2024-01-21T00:00:00Z", [5, 2, 1]),
        ("updated:<2024-01-16T12:00:00Z", [4, 3]),
        ("updated:<=2024-01-16T00:00:00Z", [4, 3]),
        ("updated:2024-01-16T00:00:00Z..2024-02-01T00:00:00Z", [4, 2, 1]),
        ("crash", [4, 1]),
        ('"dark mode"', [2]),
    ],
)
async def test_search_qualifiers(env: Env, qualifiers: str, expected: list[int]) -> None:
    seed_search(env.gh)
    response = await env.get("/search/issues", params={"q": f"repo:acme/widgets {qualifiers}"})
    assert numbers(response) == expected
    assert response.json()["total_count"] == len(expected)
    assert response.json()["incomplete_results"] is False


async def test_search_sees_only_the_tokens_installation(env: Env) -> None:
    seed_search(env.gh)
    assert numbers(await env.get("/search/issues", params={"q": "label:bug"})) == [4, 3, 1]
    theirs = await env.get("/search/issues", params={"q": "label:bug"}, token=env.token_b)
    assert [i["title"] for i in theirs.json()["items"]] == ["Their bug"]
    refused = await env.get("/search/issues", params={"q": "repo:other/things"})
    assert refused.status_code == 422
    jwt_search = await env.client.get("/search/issues?q=x", headers=bearer(app_jwt()))
    assert jwt_search.status_code == 403
    assert (await env.get("/search/issues")).status_code == 422  # no q
    took(env.gh, "query parameter 'q' is required")
    unsupported = await env.get("/search/issues", params={"q": "milestone:v1"})
    assert unsupported.status_code == 422
    assert "milestone" in str(unsupported.json()["errors"])


async def test_search_items_look_like_github(env: Env) -> None:
    seed_search(env.gh)
    response = await env.get("/search/issues", params={"q": "repo:acme/widgets is:pr is:open"})
    (item,) = response.json()["items"]
    assert item["html_url"] == "https://github.com/acme/widgets/pull/4"
    assert item["url"] == f"{env.base}/repos/acme/widgets/issues/4"
    assert item["pull_request"]["url"] == f"{env.base}/repos/acme/widgets/pulls/4"
    assert item["user"] == {**item["user"], "login": "carol", "type": "User"}
    assert item["labels"][0]["name"] == "bug"
    assert item["created_at"] == "2024-01-15T00:00:00Z"


async def test_search_sort_by_updated(env: Env) -> None:
    seed_search(env.gh)
    q = {"q": "repo:acme/widgets", "sort": "updated"}
    assert numbers(await env.get("/search/issues", params=q)) == [5, 1, 2, 4, 3]
    asc = await env.get("/search/issues", params={**q, "order": "asc"})
    assert numbers(asc) == [3, 4, 2, 1, 5]


async def test_search_pagination_link_header(env: Env) -> None:
    env.gh.add_repo("acme/many", A)
    for n in range(1, 8):
        env.gh.add_issue("acme/many", title=f"issue {n}")
    url = f"{env.base}/search/issues?q=repo%3Aacme%2Fmany&per_page=3"

    def page(n: int) -> str:
        return f"<{url}&page={n}>"

    first = await env.get(url)
    assert numbers(first) == [7, 6, 5]
    assert first.json()["total_count"] == 7
    assert first.headers["link"] == f'{page(2)}; rel="next", {page(3)}; rel="last"'
    second = await env.get(first.links["next"]["url"])
    assert numbers(second) == [4, 3, 2]
    assert second.headers["link"] == (
        f'{page(1)}; rel="prev", {page(3)}; rel="next", {page(3)}; rel="last", '
        f'{page(1)}; rel="first"'
    )
    third = await env.get(second.links["next"]["url"])
    assert numbers(third) == [1]
    assert third.headers["link"] == f'{page(2)}; rel="prev", {page(1)}; rel="first"'
    single = await env.get("/search/issues", params={"q": "repo:acme/many"})
    assert len(numbers(single)) == 7 and "link" not in single.headers


async def test_gidgethub_follows_search_pages(env: Env) -> None:
    env.gh.add_repo("acme/many", A)
    for n in range(1, 8):
        env.gh.add_issue("acme/many", title=f"issue {n}")
    async with httpx.AsyncClient(headers=DOCUMENTED) as client:
        gh = GitHubAPI(client, "ghapp", base_url=env.base, oauth_token=env.token)
        items = [i async for i in gh.getiter("/search/issues?q=repo:acme/many&per_page=3")]
    assert [i["number"] for i in items] == [7, 6, 5, 4, 3, 2, 1]


async def test_incomplete_results(env: Env) -> None:
    seed_search(env.gh)
    env.gh.set_incomplete_results(True)
    response = await env.get("/search/issues", params={"q": "repo:acme/widgets"})
    assert response.json()["incomplete_results"] is True


# -- issues, comments, reactions -----------------------------------------------------------


async def test_comments_create_list_update(env: Env) -> None:
    env.gh.add_issue("acme/widgets", title="Crash", user="alice")
    created = await env.post("/repos/acme/widgets/issues/1/comments", {"body": "On it"})
    assert created.status_code == 201
    comment = created.json()
    assert comment["user"]["login"] == "ghapp-standin[bot]"
    assert comment["user"]["type"] == "Bot"
    assert comment["html_url"] == (
        f"https://github.com/acme/widgets/issues/1#issuecomment-{comment['id']}"
    )
    assert comment["created_at"].endswith("Z")
    cid = comment["id"]
    updated = await env.patch(f"/repos/acme/widgets/issues/comments/{cid}", {"body": "Done"})
    assert updated.status_code == 200 and updated.json()["body"] == "Done"
    fetched = await env.get(f"/repos/acme/widgets/issues/comments/{cid}")
    assert fetched.json()["body"] == "Done"
    assert [c["body"] for c in env.gh.comments_on("acme/widgets", 1)] == ["Done"]
    assert env.gh.issue("acme/widgets", 1)["comments"] == 1
    assert (
        await env.post("/repos/acme/widgets/issues/9/comments", {"body": "x"})
    ).status_code == 404
    missing = await env.get("/repos/acme/widgets/issues/comments/123")
    assert missing.status_code == 404


async def test_comment_list_is_paginated(env: Env) -> None:
    env.gh.add_issue("acme/widgets", title="Busy")
    for body in ("one", "two", "three"):
        env.gh.add_comment("acme/widgets", 1, body, user="alice")
    first = await env.get("/repos/acme/widgets/issues/1/comments", params={"per_page": 2})
    assert [c["body"] for c in first.json()] == ["one", "two"]
    assert first.links["next"]["url"].endswith(
        "/repos/acme/widgets/issues/1/comments?per_page=2&page=2"
    )
    second = await env.get(first.links["next"]["url"])
    assert [c["body"] for c in second.json()] == ["three"]


async def test_comment_body_limit(env: Env) -> None:
    env.gh.add_issue("acme/widgets", title="Long")
    ok = await env.post("/repos/acme/widgets/issues/1/comments", {"body": "x" * 65536})
    assert ok.status_code == 201
    too_long = await env.post("/repos/acme/widgets/issues/1/comments", {"body": "x" * 65537})
    assert too_long.status_code == 422
    assert too_long.json()["message"] == "Validation Failed"
    assert too_long.json()["errors"] == [
        {
            "resource": "IssueComment",
            "code": "custom",
            "field": "body",
            "message": "body is too long (maximum is 65536 characters)",
        }
    ]
    cid = ok.json()["id"]
    patch = await env.patch(f"/repos/acme/widgets/issues/comments/{cid}", {"body": "y" * 70000})
    assert patch.status_code == 422
    assert len(env.gh.comments_on("acme/widgets", 1)) == 1


async def test_reactions_are_idempotent(env: Env) -> None:
    env.gh.add_issue("acme/widgets", title="Hi")
    cid = env.gh.add_comment("acme/widgets", 1, "/claude do it", user="alice")["id"]
    path = f"/repos/acme/widgets/issues/comments/{cid}/reactions"
    first = await env.post(path, {"content": "eyes"})
    assert first.status_code == 201
    again = await env.post(path, {"content": "eyes"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert (await env.post(path, {"content": "rocket"})).status_code == 201
    assert (await env.post(path, {"content": "thumbs"})).status_code == 422
    took(env.gh, '"thumbs" is not one of')
    assert [r["content"] for r in env.gh.reactions_on(cid)] == ["eyes", "rocket"]
    assert env.gh.reactions_on(cid)[0]["user"]["login"] == "ghapp-standin[bot]"
    on_issue = await env.post("/repos/acme/widgets/issues/1/reactions", {"content": "+1"})
    assert on_issue.status_code == 201
    assert len(env.gh.reactions_on_issue("acme/widgets", 1)) == 1


async def test_issue_create_and_update(env: Env) -> None:
    env.gh.add_issue("acme/widgets", title="First")
    created = await env.post(
        "/repos/acme/widgets/issues", {"title": "Report", "body": "all good", "labels": ["report"]}
    )
    assert created.status_code == 201
    assert created.json()["number"] == 2
    assert created.json()["user"]["login"] == "ghapp-standin[bot]"
    closed = await env.patch("/repos/acme/widgets/issues/2", {"state": "closed", "body": "done"})
    assert closed.json()["state"] == "closed" and closed.json()["closed_at"]
    fetched = await env.get("/repos/acme/widgets/issues/2")
    assert (fetched.json()["body"], fetched.json()["labels"][0]["name"]) == ("done", "report")
    assert (await env.post("/repos/acme/widgets/issues", {"body": "no title"})).status_code == 422
    assert (await env.patch("/repos/acme/widgets/issues/2", {"state": "gone"})).status_code == 422
    took(env.gh, '"title" is a required property', '"gone" is not one of')


# -- pull requests, statuses ---------------------------------------------------------------


async def test_pull_requests(env: Env) -> None:
    env.gh.add_issue("acme/widgets", title="An issue")
    env.gh.add_issue(
        "acme/widgets",
        title="A fork's PR",
        pull=True,
        head="patch-1",
        head_repo="carol/widgets",
        draft=True,
        user="carol",
    )
    env.gh.set_pr_files("acme/widgets", 2, ["README.md", ("new.py", "added")])
    pull = (await env.get("/repos/acme/widgets/pulls/2")).json()
    assert pull["head"]["ref"] == "patch-1"
    assert pull["head"]["label"] == "carol:patch-1"
    assert pull["head"]["repo"]["full_name"] == "carol/widgets"
    assert pull["head"]["repo"]["fork"] is True
    assert pull["head"]["repo"]["clone_url"] == "https://github.com/carol/widgets.git"
    assert len(pull["head"]["sha"]) == 40
    assert pull["base"]["ref"] == "main" and pull["base"]["repo"]["full_name"] == "acme/widgets"
    assert pull["draft"] is True and pull["mergeable"] is True
    assert (await env.get("/repos/acme/widgets/issues/2")).json()["pull_request"]
    assert (await env.get("/repos/acme/widgets/pulls/1")).status_code == 404  # an issue
    files = (await env.get("/repos/acme/widgets/pulls/2/files")).json()
    assert [(f["filename"], f["status"]) for f in files] == [
        ("README.md", "modified"),
        ("new.py", "added"),
    ]


async def test_pull_request_creation(env: Env) -> None:
    body = {"title": "Fix", "head": "ghapp/fix-1", "base": "main", "body": "Fixes #1"}
    created = await env.post("/repos/acme/widgets/pulls", body)
    assert created.status_code == 201
    assert created.json()["number"] == 1
    assert created.json()["html_url"] == "https://github.com/acme/widgets/pull/1"
    assert created.json()["head"]["label"] == "acme:ghapp/fix-1"
    again = await env.post("/repos/acme/widgets/pulls", body)
    assert again.status_code == 422
    assert again.json()["errors"][0]["message"] == (
        "A pull request already exists for acme:ghapp/fix-1."
    )
    listed = await env.get("/repos/acme/widgets/pulls", params={"head": "acme:ghapp/fix-1"})
    assert [p["number"] for p in listed.json()] == [1]
    other = await env.get("/repos/acme/widgets/pulls", params={"head": "acme:other"})
    assert other.json() == []
    updated = await env.patch("/repos/acme/widgets/pulls/1", {"title": "Fix it", "state": "closed"})
    assert (updated.json()["title"], updated.json()["state"]) == ("Fix it", "closed")
    assert (await env.get("/repos/acme/widgets/pulls")).json() == []
    assert len((await env.get("/repos/acme/widgets/pulls?state=all")).json()) == 1


async def test_commit_status(env: Env) -> None:
    sha = "a" * 40
    status = {"state": "pending", "context": "ghapp", "description": "running"}
    created = await env.post(f"/repos/acme/widgets/statuses/{sha}", status)
    assert created.status_code == 201
    assert env.gh.statuses[0]["sha"] == sha and env.gh.statuses[0]["state"] == "pending"
    bad = await env.post(f"/repos/acme/widgets/statuses/{sha}", {"state": "meh"})
    assert bad.status_code == 422
    took(env.gh, '"meh" is not one of')


# -- permissions, contents -----------------------------------------------------------------


async def test_collaborator_permission(env: Env) -> None:
    env.gh.add_repo("alice/tools", A)
    for login, role in [
        ("alice", "admin"),
        ("bob", "write"),
        ("carol", "maintain"),
        ("dave", "read"),
        ("erin", "none"),
    ]:
        env.gh.set_permission("acme/widgets", login, role)

    async def permission(repo: str, login: str) -> tuple[int, Any]:
        response = await env.get(f"/repos/{repo}/collaborators/{login}/permission")
        data = response.json()
        return response.status_code, (data.get("permission"), data.get("role_name"))

    assert await permission("acme/widgets", "alice") == (200, ("admin", "admin"))
    assert await permission("acme/widgets", "BOB") == (200, ("write", "write"))
    assert await permission("acme/widgets", "carol") == (200, ("write", "maintain"))
    assert await permission("acme/widgets", "dave") == (200, ("read", "read"))
    assert await permission("acme/widgets", "erin") == (200, ("none", "none"))
    assert (await permission("acme/widgets", "mallory"))[0] == 404
    assert await permission("alice/tools", "alice") == (200, ("admin", "admin"))  # the owner
    response = await env.get("/repos/acme/widgets/collaborators/alice/permission")
    assert response.json()["user"]["login"] == "alice"


async def test_contents(env: Env) -> None:
    gh = env.gh
    gh.add_file("acme/widgets", "README.md", "hello\n")
    gh.add_file("acme/widgets", ".github/ghapp.yml", "jobs: []\n")
    gh.add_file("acme/widgets", "docs/a.md", "A")
    gh.add_file("acme/widgets", "docs/sub/b.md", "B")
    gh.add_file("acme/widgets", "README.md", "dev readme", ref="dev")
    readme = (await env.get("/repos/acme/widgets/contents/README.md")).json()
    assert (readme["type"], readme["encoding"], readme["path"]) == ("file", "base64", "README.md")
    assert base64.b64decode(readme["content"]).decode() == "hello\n"
    assert readme["sha"] == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object
    config = (await env.get("/repos/acme/widgets/contents/.github/ghapp.yml")).json()
    assert base64.b64decode(config["content"]) == b"jobs: []\n"
    # GitHub describes no listing of the root without a path (the contract refuses it).
    assert (await env.get("/repos/acme/widgets/contents/")).status_code == 404
    took(env.gh, "is not a path GitHub's")
    docs = (await env.get("/repos/acme/widgets/contents/docs")).json()
    assert [(e["type"], e["path"]) for e in docs] == [("file", "docs/a.md"), ("dir", "docs/sub")]
    dev = await env.get("/repos/acme/widgets/contents/README.md", params={"ref": "dev"})
    assert base64.b64decode(dev.json()["content"]) == b"dev readme"
    assert (await env.get("/repos/acme/widgets/contents/nope.md")).status_code == 404
    bad_ref = await env.get("/repos/acme/widgets/contents/README.md", params={"ref": "nope"})
    assert bad_ref.status_code == 404


# -- faults, rate limits, recording ------------------------------------------------------


async def test_injected_502_once_then_ok(env: Env) -> None:
    env.gh.inject("GET", r"^/repos/acme/widgets$", 502)
    failed = await env.get("/repos/acme/widgets")
    assert failed.status_code == 502
    assert failed.headers["content-type"] == "application/json; charset=utf-8"
    assert (await env.get("/repos/acme/widgets")).status_code == 200
    assert [(r.status, r.injected) for r in env.gh.requests] == [(502, True), (200, False)]


async def test_injected_429_and_secondary_limit(env: Env) -> None:
    env.gh.add_issue("acme/widgets", title="x")
    env.gh.inject("POST", r"/comments$", 429, headers={"Retry-After": "1"}, times=2)
    path = "/repos/acme/widgets/issues/1/comments"
    for _ in range(2):
        limited = await env.post(path, {"body": "hi"})
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")
    assert (await env.post(path, {"body": "hi"})).status_code == 201
    env.gh.inject_secondary_rate_limit("POST", r"/comments$", retry_after=2)
    secondary = await env.post(path, {"body": "hi"})
    assert secondary.status_code == 403
    assert secondary.headers["retry-after"] == "2"
    assert "secondary rate limit" in secondary.json()["message"]
    assert int(secondary.headers["x-ratelimit-remaining"]) > 0
    env.gh.inject(
        "*",
        "comments",
        403,
        body={
            "message": "You have exceeded a secondary rate limit and have been temporarily blocked."
        },
        headers={"Retry-After": "1"},
    )
    custom = await env.get(path)
    assert custom.json()["message"].startswith("You have exceeded a secondary rate limit")
    assert [c["body"] for c in env.gh.comments_on("acme/widgets", 1)] == ["hi"]


async def test_primary_rate_limit(env: Env) -> None:
    env.gh.inject_primary_rate_limit("GET", "^/repos/", reset_in=30)
    async with httpx.AsyncClient(headers=DOCUMENTED) as client:
        gh = GitHubAPI(client, "ghapp", base_url=env.base, oauth_token=env.token)
        with pytest.raises(RateLimitExceeded) as caught:
            await gh.getitem("/repos/acme/widgets")
        assert 20 < (caught.value.rate_limit.reset_datetime - datetime.now(UTC)).seconds <= 31
        assert (await gh.getitem("/repos/acme/widgets"))["id"] == 1
    env.gh.set_rate_limit(A, 0)
    exhausted = await env.get("/repos/acme/widgets")
    assert exhausted.status_code == 403
    assert exhausted.headers["x-ratelimit-remaining"] == "0"
    assert exhausted.json()["message"] == f"API rate limit exceeded for installation ID {A}."
    assert (await env.get("/repos/other/things", env.token_b)).status_code == 200


async def test_rate_limit_headers_count_down_per_installation(env: Env) -> None:
    first = await env.get("/repos/acme/widgets")
    second = await env.get("/repos/acme/widgets")
    other = await env.get("/repos/other/things", env.token_b)
    assert first.headers["x-ratelimit-limit"] == "5000"
    assert first.headers["x-ratelimit-remaining"] == "4999"
    assert second.headers["x-ratelimit-remaining"] == "4998"
    assert other.headers["x-ratelimit-remaining"] == "4999"
    reset = int(first.headers["x-ratelimit-reset"])
    assert time.time() < reset <= time.time() + 3600
    anonymous = await env.client.get("/repos/acme/widgets")
    assert anonymous.headers["x-ratelimit-limit"] == "60"


async def test_requests_are_recorded(env: Env) -> None:
    env.gh.add_issue("acme/widgets", title="x")
    await env.post("/repos/acme/widgets/issues/1/comments", {"body": "hello"})
    await env.client.get("/app", headers=bearer(app_jwt()))
    await env.client.get("/repos/acme/widgets/issues/1", params={"a": "1"})
    await env.client.get("/no/such/route", headers=as_token(env.token))
    comment, app, anonymous, unknown = env.gh.requests
    assert (comment.method, comment.path, comment.json) == (
        "POST",
        "/repos/acme/widgets/issues/1/comments",
        {"body": "hello"},
    )
    assert (comment.auth, comment.installation_id, comment.status) == ("installation-token", A, 201)
    assert comment.headers["authorization"] == f"token {env.token}"
    assert (app.auth, app.installation_id, app.json) == ("app-jwt", None, None)
    assert (anonymous.auth, anonymous.query, anonymous.status) == ("none", {"a": "1"}, 401)
    assert unknown.status == 404
    assert env.gh.find_requests("POST", r"/comments$") == [comment]
    unknown_body = await env.get("/no/such/route")
    assert unknown_body.json()["message"] == "Not Found"
    took(env.gh, "query parameter 'a' is not described", "/no/such/route is not a path")


def test_serve_in_thread_from_sync_code() -> None:
    gh = build_standin()
    gh.add_issue("acme/widgets", title="sync")
    with gh.serve_in_thread() as base, httpx.Client(base_url=base, headers=DOCUMENTED) as client:
        assert client.get("/app", headers=bearer(app_jwt())).status_code == 200
        token = client.post(f"/app/installations/{A}/access_tokens", headers=bearer(app_jwt()))
        issue = client.get("/repos/acme/widgets/issues/1", headers=as_token(token.json()["token"]))
        assert issue.json()["title"] == "sync"
        gh.add_comment("acme/widgets", 1, "added while serving")  # state shared across threads
        comments = client.get(
            "/repos/acme/widgets/issues/1/comments", headers=as_token(token.json()["token"])
        )
        assert [c["body"] for c in comments.json()] == ["added while serving"]
    assert gh.base_url is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/app", timeout=2)


async def test_bad_json_body(env: Env) -> None:
    env.gh.add_issue("acme/widgets", title="x")
    response = await env.client.post(
        "/repos/acme/widgets/issues/1/comments",
        content=b"{not json",
        headers={**as_token(env.token), "content-type": "application/json"},
    )
    assert (response.status_code, response.json()["message"]) == (400, "Problems parsing JSON")
    took(env.gh, "the body is not JSON")


async def test_gidgethub_sees_validation_errors(env: Env) -> None:
    env.gh.add_issue("acme/widgets", title="x")
    async with httpx.AsyncClient(headers=DOCUMENTED) as client:
        gh = GitHubAPI(client, "ghapp", base_url=env.base, oauth_token=env.token)
        with pytest.raises(BadRequest) as caught:
            await gh.post("/repos/acme/widgets/issues/1/comments", data={"body": "z" * 70000})
    assert "body is too long" in str(caught.value)
