"""Tenants stay in their repositories: a token limited to one repository, tried against the app.

The tenant's token may act on ``octo-org/other`` (REPO_B) only. In the same installation is
``octo-org/beta``, a private repository the tenant must not reach or even learn about; in
another installation is ``Codertocat/Hello-World`` (REPO_A). Every request goes through the
app's HTTP interface (httpx's ASGI transport), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ghapp.db.models import Job, Notifier, Run, SignedOutSession
from ghapp.server import serve_metrics
from tests.api_support import (
    ADMIN_TOKEN,
    REPO_A,
    REPO_A_NAME,
    REPO_B,
    REPO_B_NAME,
    ApiUnderTest,
    add_run,
    api_under_test,
)
from tests.support import add_repository, csrf_of, sign_in

BETA = 778
BETA_NAME = "octo-org/beta"
NOBODY = 987654  # an id nothing has
TRIAGE = {"commandId": "issue/triage", "targetType": "issues", "cronExpression": "0 9 * * *"}


@pytest.fixture
async def api(db_url, db, tmp_path) -> AsyncIterator[ApiUnderTest]:
    async with api_under_test(db_url, db, tmp_path) as under_test:
        await add_repository(
            db, repo_id=BETA, full_name=BETA_NAME, installation_id=42, account="octo-org"
        )
        yield under_test


async def tenant_task(api: ApiUnderTest, **fields: Any) -> dict[str, Any]:
    body = {"name": "mine", "repo": REPO_B_NAME, **TRIAGE, **fields}
    answer = await api.http.post("/api/scheduler/tasks", json=body, headers=api.scoped())
    assert answer.status_code == 201, answer.text
    return answer.json()


async def admin_notifier(api: ApiUnderTest, name: str, repo_ids: list[int]) -> int:
    answer = await api.http.post(
        "/api/scheduler/webhooks",
        headers=api.admin(),
        json={
            "name": name,
            "webhookType": "slack",
            "webhookUrl": "https://hooks.slack.com/services/T0/B0/" + name,
            "repoIds": repo_ids,
        },
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def refusal(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["detail"][0]["field"]


# -- admin-only settings ---------------------------------------------------------------------


async def test_shell_jobs_and_bypass_permissions_are_for_admins_only(api):
    shell = {"runner": "shell", "shellCommand": "env"}
    made = await api.http.post(
        "/api/scheduler/tasks",
        headers=api.scoped(),
        json={"name": "env", "repo": REPO_B_NAME, **shell},
    )
    assert refusal(made) == (403, "runner")
    assert "outside any sandbox" in made.json()["error"]
    seed1 = await api.http.post(
        f"/api/repos/{REPO_B}/schedules",
        headers=api.scoped(),
        json={"name": "env", "runner": "shell", "shell_command": "env"},
    )
    assert refusal(seed1) == (403, "runner")

    mine = await tenant_task(api)
    for route in (
        f"/api/scheduler/tasks/{mine['id']}",
        f"/api/repos/{REPO_B}/schedules/{mine['id']}",
    ):
        body = shell if "tasks" in route else {"runner": "shell", "shell_command": "env"}
        changed = await api.http.patch(route, headers=api.scoped(), json=body)
        assert changed.status_code == 403, changed.text
    bypass = await api.http.patch(
        f"/api/scheduler/tasks/{mine['id']}",
        headers=api.scoped(),
        json={"permissionMode": "bypassPermissions"},
    )
    assert refusal(bypass) == (403, "permissionMode")
    # An admin's builtin job in the tenant's repository: the tenant may rename it, not
    # change what runs it.
    builtin = await api.job(
        REPO_B,
        name="measure",
        runner="builtin",
        command_id="context/analyze",
        target_type="codebase",
    )
    renamed = await api.http.patch(
        f"/api/scheduler/tasks/{builtin['id']}", headers=api.scoped(), json={"name": "measured"}
    )
    assert renamed.status_code == 200, renamed.text
    swapped = await api.http.patch(
        f"/api/scheduler/tasks/{builtin['id']}", headers=api.scoped(), json={"runner": "claude"}
    )
    assert refusal(swapped) == (403, "runner")

    async with api.db.read() as conn:
        runners = {row.runner for row in await conn.execute(select(Job))}
        modes = {row.permission_mode for row in await conn.execute(select(Job))}
    assert "shell" not in runners and "bypassPermissions" not in modes


async def test_installation_wide_jobs_are_for_admins_only(api):
    for scope in (
        {"repoSelection": "all", "installationId": 42},
        {"repoSelection": "list", "installationId": 42, "repoIds": [BETA]},
        {"repoSelection": "list", "installationId": 42, "repoIds": [REPO_B]},
    ):
        answer = await api.http.post(
            "/api/scheduler/tasks", headers=api.scoped(), json={"name": "wide", **TRIAGE, **scope}
        )
        assert refusal(answer) == (403, "repoSelection"), answer.text
    mine = await tenant_task(api)
    widened = await api.http.patch(
        f"/api/scheduler/tasks/{mine['id']}",
        headers=api.scoped(),
        json={"repoSelection": "all", "installationId": 42, "repo": None},
    )
    assert widened.status_code in (403, 422), widened.text
    for repo in (BETA_NAME, REPO_A_NAME):  # moved to a repository it cannot see: unknown
        moved = await api.http.patch(
            f"/api/scheduler/tasks/{mine['id']}", headers=api.scoped(), json={"repo": repo}
        )
        nothing = await api.http.patch(
            f"/api/scheduler/tasks/{mine['id']}", headers=api.scoped(), json={"repo": "no/such"}
        )
        assert moved.status_code == nothing.status_code == 422
        assert moved.json() == json.loads(nothing.text.replace("no/such", repo))
    async with api.db.read() as conn:
        jobs = list(await conn.execute(select(Job)))
    assert [(job.repo_id, job.repo_selection) for job in jobs] == [(REPO_B, "one")]


# -- references ------------------------------------------------------------------------------


async def test_references_to_another_repositorys_things_are_unknown(api):
    beta_job = await api.job(BETA, name="beta's private job")
    beta_hook = await admin_notifier(api, "beta-hook", [BETA])
    global_hook = await admin_notifier(api, "everyone", [])
    mine = await tenant_task(api)
    url = f"/api/scheduler/tasks/{mine['id']}"

    async def same_as_missing(field: str, theirs: Any, missing: Any) -> None:
        answer = await api.http.patch(url, headers=api.scoped(), json={field: theirs})
        nothing = await api.http.patch(url, headers=api.scoped(), json={field: missing})
        assert answer.status_code == nothing.status_code == 422, answer.text
        assert answer.json() == json.loads(nothing.text.replace(str(NOBODY), str(beta_job["id"])))

    await same_as_missing("afterJobId", beta_job["id"], NOBODY)
    for hook in (beta_hook, global_hook):
        answer = await api.http.patch(url, headers=api.scoped(), json={"webhookIds": [hook]})
        nothing = await api.http.patch(url, headers=api.scoped(), json={"webhookIds": [NOBODY]})
        assert answer.status_code == nothing.status_code == 422
        assert answer.json() == json.loads(nothing.text.replace(str(NOBODY), str(hook)))
    created = await api.http.post(
        "/api/scheduler/tasks",
        headers=api.scoped(),
        json={"name": "x", "repo": REPO_B_NAME, **TRIAGE, "afterJobId": beta_job["id"]},
    )
    assert refusal(created) == (422, "afterJobId")

    # A global notifier an admin put on the tenant's job stays, and the tenant may still edit.
    given = await api.http.patch(url, headers=api.admin(), json={"webhookIds": [global_hook]})
    assert given.status_code == 200
    renamed = await api.http.patch(url, headers=api.scoped(), json={"name": "renamed"})
    assert renamed.status_code == 200 and renamed.json()["webhookIds"] == [global_hook]

    # Whether a repository exists is not the tenant's to learn.
    seen = await api.http.get(
        "/api/scheduler/tasks", params={"repo": BETA_NAME}, headers=api.scoped()
    )
    unseen = await api.http.get(
        "/api/scheduler/tasks", params={"repo": "no/such"}, headers=api.scoped()
    )
    assert seen.status_code == unseen.status_code == 422
    assert seen.json() == json.loads(unseen.text.replace("no/such", BETA_NAME))
    hooks = await api.http.get("/api/scheduler/webhooks", headers=api.scoped())
    assert hooks.json()["webhooks"] == []
    for hook in (beta_hook, global_hook):
        hidden = await api.http.get(f"/api/scheduler/webhooks/{hook}", headers=api.scoped())
        missing = await api.http.get(f"/api/scheduler/webhooks/{NOBODY}", headers=api.scoped())
        assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())
    made = await api.http.post(
        "/api/scheduler/webhooks",
        headers=api.scoped(),
        json={"name": "all", "webhookType": "slack", "webhookUrl": "https://h.example/x"},
    )
    assert made.status_code == 403  # a notifier for every repository is an admin's


# -- the dashboard's event stream --------------------------------------------------------------


def since_of(html: str) -> str:
    match = re.search(r'data-since="([^"]*)"', html)
    assert match, "the page has no live fingerprint"
    return match.group(1)


async def test_the_live_fingerprint_says_nothing_about_other_repositories(api):
    await sign_in(api.http, api.scoped_token)
    mine = await api.job(REPO_B, name="mine")
    before = since_of((await api.http.get("/")).text)

    beta = await api.job(BETA, name="beta's")
    await api.state.jobs.run_now(beta["id"], actor="test")
    await api.state.jobs.pause(beta["id"], actor="test")
    await add_run(api, beta["id"], status="running", repo_id=BETA)
    assert since_of((await api.http.get("/")).text) == before

    await api.state.jobs.run_now(mine["id"], actor="test")
    after_run = since_of((await api.http.get("/")).text)
    assert after_run != before
    await api.state.jobs.pause(mine["id"], actor="test")
    assert since_of((await api.http.get("/")).text) != after_run


# -- signing out, rate limits, metrics ------------------------------------------------------------


async def test_signing_out_revokes_the_session_on_the_server(api):
    await sign_in(api.http, api.scoped_token)
    cookie = api.http.cookies.get("ghapp_session")
    assert cookie
    page = await api.http.get("/")
    out = await api.http.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    async with api.db.read() as conn:
        assert len(list(await conn.execute(select(SignedOutSession)))) == 1

    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ghapp.test") as thief:
        thief.cookies.set("ghapp_session", cookie)
        answer = await thief.get("/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    # Another session of the same token is not affected.
    await sign_in(api.http, api.scoped_token)
    assert (await api.http.get("/")).status_code == 200


async def test_wrong_tokens_are_rate_limited_per_client(api):
    limit = api.state.settings.auth_failure_limit
    wrong = {"Authorization": "Bearer ghapp_guess"}
    for _ in range(limit):
        assert (await api.http.get("/api/scheduler/tasks", headers=wrong)).status_code == 401
    blocked = await api.http.get("/api/scheduler/tasks", headers=api.scoped())
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) == 60
    assert "too many wrong tokens" in blocked.json()["error"]

    elsewhere = httpx.ASGITransport(app=api.app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://ghapp.test") as other:
        fine = await other.get("/api/scheduler/tasks", headers=api.scoped())
        assert fine.status_code == 200  # counted per client

        page = (await other.get("/login")).text
        for _ in range(limit):  # each answer is a fresh form with its own CSRF token
            tried = await other.post(
                "/login", data={"csrf_token": csrf_of(page), "token": "nope", "next": "/"}
            )
            assert tried.status_code == 401
            page = tried.text
        held = await other.post(
            "/login", data={"csrf_token": csrf_of(page), "token": ADMIN_TOKEN, "next": "/"}
        )
        assert held.status_code == 429 and int(held.headers["retry-after"]) == 60
        assert "Too many wrong tokens" in held.text

    api.clock.advance(timedelta(seconds=61))
    assert (await api.http.get("/api/scheduler/tasks", headers=api.scoped())).status_code == 200


async def test_metrics_can_require_a_token(api):
    api.state.settings.metrics_token = None
    assert (await api.http.get("/metrics")).status_code == 200  # open unless a token is set
    from pydantic import SecretStr

    api.state.settings.metrics_token = SecretStr("scrape-me-please")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        answer = await api.http.get("/metrics", headers=headers)
        assert answer.status_code == 401 and "ghapp_" not in answer.text
    good = {"Authorization": "Bearer scrape-me-please"}
    answer = await api.http.get("/metrics", headers=good)
    assert answer.status_code == 200 and "ghapp_" in answer.text

    # `ghapp worker --metrics-port`: the same check on the worker's own port.
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server, task = await serve_metrics(api.state, sock)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/metrics")).status_code == 401
            scraped = await http.get("/metrics", headers=good)
            assert scraped.status_code == 200 and "ghapp_" in scraped.text
    finally:
        server.should_exit = True
        await task


# -- the property: nothing of another repository, ever -------------------------------------------

JOB_IDS = st.integers(min_value=1, max_value=12)
RUN_IDS = st.integers(min_value=1, max_value=8)
HOOK_IDS = st.integers(min_value=1, max_value=5)
REPOS = st.sampled_from([REPO_B, REPO_A, BETA])
REPO_NAMES = st.sampled_from([REPO_B_NAME, REPO_A_NAME, BETA_NAME])
TASK_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["t1", "t2"]),
        "repo": REPO_NAMES,
        "afterJobId": JOB_IDS,
        "webhookIds": st.lists(HOOK_IDS, max_size=2),
        "repoSelection": st.sampled_from(["one", "all", "list"]),
        "installationId": st.sampled_from([42, 957387]),
        "repoIds": st.lists(st.sampled_from([REPO_B, REPO_A, BETA]), max_size=2),
        "runner": st.sampled_from(["claude", "builtin", "shell"]),
        "shellCommand": st.just("env"),
        "enabled": st.booleans(),
    },
)
HOOK_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.just("h"),
        "repoIds": st.lists(st.sampled_from([REPO_B, REPO_A, BETA]), max_size=2),
        "enabled": st.booleans(),
    },
)
CALLS = st.one_of(
    st.tuples(
        st.just("GET"),
        st.sampled_from(
            [
                "/api/scheduler/tasks",
                "/api/scheduler/executions",
                "/api/scheduler/webhooks",
                "/api/scheduler/audit",
                "/api/scheduler/status",
                "/api/scheduler/upcoming",
            ]
        ),
        st.just(None),
    ),
    st.builds(lambda j: ("GET", f"/api/scheduler/tasks/{j}", None), JOB_IDS),
    st.builds(lambda j: ("GET", f"/api/scheduler/executions?taskId={j}", None), JOB_IDS),
    st.builds(lambda n: ("GET", f"/api/scheduler/tasks?repo={n}", None), REPO_NAMES),
    st.builds(lambda r: ("GET", f"/api/scheduler/executions/{r}", None), RUN_IDS),
    st.builds(lambda h: ("GET", f"/api/scheduler/webhooks/{h}", None), HOOK_IDS),
    st.builds(lambda r: ("GET", f"/api/repos/{r}/schedules", None), REPOS),
    st.builds(lambda r, j: ("GET", f"/api/repos/{r}/schedules/{j}/runs", None), REPOS, JOB_IDS),
    st.builds(
        lambda j, a: ("POST", f"/api/scheduler/tasks/{j}/{a}", {}),
        JOB_IDS,
        st.sampled_from(["run"]),
    ),
    st.builds(
        lambda r, j, a: ("POST", f"/api/repos/{r}/schedules/{j}/{a}", None),
        REPOS,
        JOB_IDS,
        st.sampled_from(["run", "pause", "resume"]),
    ),
    st.builds(
        lambda r, a: ("POST", f"/api/scheduler/executions/{r}/{a}", None),
        RUN_IDS,
        st.sampled_from(["retry", "cancel"]),
    ),
    st.builds(lambda j: ("DELETE", f"/api/scheduler/tasks/{j}", None), JOB_IDS),
    st.builds(lambda h: ("DELETE", f"/api/scheduler/webhooks/{h}", None), HOOK_IDS),
    st.builds(lambda j, b: ("PATCH", f"/api/scheduler/tasks/{j}", b), JOB_IDS, TASK_FIELDS),
    st.builds(lambda h, b: ("PATCH", f"/api/scheduler/webhooks/{h}", b), HOOK_IDS, HOOK_FIELDS),
    st.builds(
        lambda b: ("POST", "/api/scheduler/tasks", {**TRIAGE, "name": "new", **b}), TASK_FIELDS
    ),
    st.builds(
        lambda b: (
            "POST",
            "/api/scheduler/webhooks",
            {"name": "n", "webhookType": "slack", "webhookUrl": "https://h.example/n", **b},
        ),
        HOOK_FIELDS,
    ),
)


async def foreign_state(api: ApiUnderTest) -> Any:
    """Everything that belongs to other repositories, as it stands."""
    async with api.db.read() as conn:
        jobs = [
            tuple(row)
            for row in await conn.execute(select(Job).where(Job.repo_id.is_distinct_from(REPO_B)))
        ]
        runs = [
            (row.id, row.status, row.cancel_requested_at)
            for row in await conn.execute(select(Run).where(Run.repo_id != REPO_B))
        ]
        hooks = [
            tuple(row)
            for row in await conn.execute(select(Notifier))
            if set(row.repo_ids or ()) != {REPO_B}
        ]
    return sorted(map(repr, jobs)), sorted(runs), sorted(map(repr, hooks))


def foreign_in(value: Any) -> list[str]:
    """Objects of other repositories named in a response body."""
    found = []
    if isinstance(value, dict):
        for key in ("repoId", "repo_id"):
            if key in value and value[key] != REPO_B:
                found.append(f"{key}={value[key]}")
        if "webhookType" in value and set(value["repoIds"] or [0]) - {REPO_B}:
            found.append(f"repoIds={value['repoIds']}")
        for key in ("repo", "taskName", "name"):
            if str(value.get(key)).startswith(("FOREIGN", REPO_A_NAME, BETA_NAME)):
                found.append(f"{key}={value[key]}")
        for item in value.values():
            found += foreign_in(item)
    elif isinstance(value, list):
        for item in value:
            found += foreign_in(item)
    return found


async def test_no_sequence_of_calls_reaches_another_repository(api):
    for repo in (REPO_A, BETA):  # other repositories' jobs, runs and notifiers
        job = await api.job(repo, name=f"FOREIGN job of {repo}")
        await api.state.jobs.run_now(job["id"], actor="test")
        await add_run(api, job["id"], status="failed", repo_id=repo)
        await admin_notifier(api, f"FOREIGN-{repo}", [repo])
    await admin_notifier(api, "FOREIGN-everyone", [])
    mine = await tenant_task(api)
    await add_run(api, mine["id"], status="failed", repo_id=REPO_B)
    untouched = await foreign_state(api)
    loop = asyncio.get_running_loop()

    async def call(method: str, path: str, body: Any) -> None:
        answer = await api.http.request(method, path, headers=api.scoped(), json=body)
        assert answer.status_code < 500, (method, path, body, answer.text)
        if answer.content and answer.headers.get("content-type", "").startswith("application/json"):
            assert foreign_in(answer.json()) == [], (method, path, body, answer.text)

    async def check(calls: list[tuple[str, str, Any]]) -> None:
        for method, path, body in calls:
            await call(method, path, body)
        assert await foreign_state(api) == untouched
        async with api.db.read() as conn:
            tenant_jobs = list(await conn.execute(select(Job).where(Job.repo_id == REPO_B)))
            visible_jobs = {row.id for row in tenant_jobs}
            visible_hooks = {
                row.id for row in await conn.execute(select(Notifier)) if row.repo_ids == [REPO_B]
            }
            jobs = list(await conn.execute(select(Job)))
        assert all(job.repo_id is not None for job in jobs)  # nothing installation-wide
        for job in tenant_jobs:
            assert job.runner != "shell" and job.repo_selection == "one"
            assert job.after_job_id is None or job.after_job_id in visible_jobs
            assert set(job.notifier_ids) <= visible_hooks

    @settings(
        max_examples=20,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(CALLS, min_size=1, max_size=6))
    def sequences(calls: list[tuple[str, str, Any]]) -> None:
        asyncio.run_coroutine_threadsafe(check(calls), loop).result(timeout=120)

    await asyncio.to_thread(sequences)
