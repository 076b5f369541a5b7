"""The REST API: both seeds' route sets over one model, validation, tokens and scope, audit."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ghapp.api import _document, build_api
from ghapp.db.models import ApiToken, AuditEntry, Run, RunStatus, Session
from ghapp.tokens import hash_token, revoke_token
from tests.api_support import (
    ADMIN_TOKEN,
    REPO_A,
    REPO_A_NAME,
    REPO_B,
    REPO_B_NAME,
    ApiUnderTest,
    add_run,
    api_under_test,
    fill,
)


@pytest.fixture
async def api(db_url, db, tmp_path):
    async with api_under_test(db_url, db, tmp_path) as under_test:
        yield under_test


async def audit(api: ApiUnderTest) -> list[Any]:
    async with api.db.read() as conn:
        return list((await conn.execute(select(AuditEntry).order_by(AuditEntry.id))).all())


# -- authentication and scope -------------------------------------------------------------------


async def test_every_api_route_refuses_a_missing_or_unknown_token(api):
    ids = {"repo_id": REPO_A, "job_id": 1, "task_id": 1, "execution_id": 1, "webhook_id": 1}
    endpoints = build_api().endpoints
    assert len(endpoints) >= 30
    for endpoint in endpoints:
        url = fill(endpoint.path, ids)
        api.clock.advance(timedelta(minutes=5))  # a new window: wrong tokens are rate-limited
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
            answer = await api.http.request(endpoint.method, url, headers=headers, json={})
            assert answer.status_code == 401, (endpoint.method, url, headers)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "token" in answer.json()["error"]


async def test_a_scoped_token_is_told_other_repositories_things_do_not_exist(api):
    job = await api.job(REPO_A)
    run_id = await add_run(api, job["id"], status="failed")
    hook = await api.http.post(
        "/api/scheduler/webhooks",
        headers=api.admin(),
        json={"name": "ops", "webhookType": "slack", "webhookUrl": "https://hooks.example/x"},
    )
    ids = {
        "repo_id": REPO_A,
        "job_id": job["id"],
        "task_id": job["id"],
        "execution_id": run_id,
        "webhook_id": hook.json()["id"],
    }
    missing = dict.fromkeys(ids, 987654)  # ids nobody has
    refused = []
    for endpoint in build_api().endpoints:
        if not endpoint.path_params and endpoint.method == "GET":
            continue  # lists: filtered by scope instead (next test)
        if endpoint.path == "/api/scheduler/webhooks" and endpoint.method == "POST":
            continue  # checked below with repoIds
        tasks = endpoint.path == "/api/scheduler/tasks"
        body = {"name": "x", "repo": REPO_A_NAME, "commandId": "issue/triage"} if tasks else {}
        url = fill(endpoint.path, ids)
        answer = await api.http.request(endpoint.method, url, headers=api.scoped(), json=body)
        if endpoint.path in ("/api/scheduler/start", "/api/scheduler/stop"):
            assert answer.status_code == 403, (endpoint.method, url, answer.text)
            assert "admin token" in answer.json()["error"]
        else:  # word for word what a thing that does not exist gets
            if tasks:
                body["repo"] = "nobody/nothing"
            nothing = await api.http.request(
                endpoint.method, fill(endpoint.path, missing), headers=api.scoped(), json=body
            )
            assert answer.status_code in (404, 422), (endpoint.method, url, answer.text)
            expected = nothing.json()
            if tasks:
                expected = json.loads(nothing.text.replace("nobody/nothing", REPO_A_NAME))
            assert (answer.status_code, answer.json()) == (nothing.status_code, expected), url
        refused.append((endpoint.method, endpoint.path))
    assert ("POST", "/api/scheduler/stop") in refused
    answer = await api.http.post(
        "/api/scheduler/webhooks",
        headers=api.scoped(),
        json={
            "name": "x",
            "webhookType": "slack",
            "webhookUrl": "https://h.example/x",
            "repoIds": [REPO_A],
        },
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "repoIds"
    # Nothing changed: the job is still there and active, the run not retried.
    still = await api.http.get(f"/api/scheduler/tasks/{job['id']}", headers=api.admin())
    assert still.json()["enabled"] is True
    async with api.db.read() as conn:
        assert len((await conn.execute(select(Run))).all()) == 1


async def test_lists_show_a_scoped_token_only_its_repositories(api):
    mine = await api.job(REPO_B, name="B's job")
    theirs = await api.job(REPO_A, name="A's job")
    await add_run(api, mine["id"], repo_id=REPO_B)
    await add_run(api, theirs["id"])
    tasks = (await api.http.get("/api/scheduler/tasks", headers=api.scoped())).json()
    assert [t["name"] for t in tasks["tasks"]] == ["B's job"]
    runs = (await api.http.get("/api/scheduler/executions", headers=api.scoped())).json()
    assert [r["taskId"] for r in runs["executions"]] == [mine["id"]]
    entries = (await api.http.get("/api/scheduler/audit", headers=api.scoped())).json()
    assert {e["repoId"] for e in entries["entries"]} == {REPO_B}
    status = (await api.http.get("/api/scheduler/status", headers=api.scoped())).json()
    assert status["activeTasks"] == 1
    schedules = await api.http.get(f"/api/repos/{REPO_B}/schedules", headers=api.scoped())
    assert [s["name"] for s in schedules.json()] == ["B's job"]
    upcoming = (await api.http.get("/api/scheduler/upcoming", headers=api.scoped())).json()
    assert {u["taskId"] for u in upcoming["upcoming"]} == {mine["id"]}


async def test_tokens_are_stored_hashed_and_revocation_takes_effect(api):
    async with api.db.read() as conn:
        row = (await conn.execute(select(ApiToken))).one()
    assert row.token_hash == hash_token(api.scoped_token)
    assert api.scoped_token not in str(tuple(row))
    assert (await api.http.get("/api/scheduler/tasks", headers=api.scoped())).status_code == 200
    async with api.db.read() as conn:
        assert (await conn.execute(select(ApiToken.last_used_at))).scalar() is not None
    await revoke_token(api.db, "team-b", actor="test")
    answer = await api.http.get("/api/scheduler/tasks", headers=api.scoped())
    assert answer.status_code == 401
    assert "revoked" in answer.json()["error"]


async def test_tokens_and_notifier_urls_never_reach_responses_or_logs(api, caplog):
    caplog.set_level(logging.DEBUG)
    secret_url = "https://hooks.example/services/T000/B000/very-secret-path"
    made = await api.http.post(
        "/api/scheduler/webhooks",
        headers=api.admin(),
        json={
            "name": "ops",
            "webhookType": "generic",
            "webhookUrl": secret_url,
            "secret": "signing-secret",
        },
    )
    assert made.status_code == 201
    await api.http.patch(
        f"/api/scheduler/webhooks/{made.json()['id']}",
        headers=api.admin(),
        json={"webhookUrl": secret_url + "2", "enabled": False},
    )
    await api.http.get("/api/scheduler/tasks", headers=api.scoped())
    texts = [made.text]
    for path in ("/api/scheduler/webhooks", "/api/scheduler/audit?limit=500"):
        texts.append((await api.http.get(path, headers=api.admin())).text)
    texts.append(caplog.text)
    for text in texts:
        for secret in ("very-secret-path", "signing-secret", ADMIN_TOKEN, api.scoped_token):
            assert secret not in text
    assert made.json()["webhookUrl"] == "https://hooks.example/****"
    async with api.db.read() as conn:
        stored = (await conn.execute(select(AuditEntry.after, AuditEntry.before))).all()
    assert "very-secret-path" not in str(stored)


# -- per-repository schedules -------------------------------------------------------------------


async def test_schedule_lifecycle_through_seed_one_routes(api):
    base = f"/api/repos/{REPO_A}/schedules"
    job = await api.job(filter_query="state:open label:bug", timezone="America/New_York")
    assert job["next_run_at"] == "2026-03-02T14:00:00Z"  # 09:00 in New York, today
    assert job["status"] == "active" and job["source"] == "api"
    listed = (await api.http.get(base, headers=api.admin())).json()
    assert [j["id"] for j in listed] == [job["id"]]
    one = f"{base}/{job['id']}"
    assert (await api.http.get(one, headers=api.admin())).json()["filter_query"] == (
        "state:open label:bug"
    )
    changed = await api.http.patch(one, headers=api.admin(), json={"cron_expression": "0 12 * * *"})
    assert changed.status_code == 200
    assert changed.json()["next_run_at"] == "2026-03-02T17:00:00Z"
    paused = (await api.http.post(f"{one}/pause", headers=api.admin())).json()
    assert paused["status"] == "paused" and paused["next_run_at"] is None
    assert api.state.signals.scheduler_wake.is_set()
    resumed = (await api.http.post(f"{one}/resume", headers=api.admin())).json()
    assert resumed["status"] == "active" and resumed["next_run_at"] is not None
    api.state.signals.work_available.clear()
    queued = await api.http.post(f"{one}/run", headers=api.admin())
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    assert api.state.signals.work_available.is_set()  # workers woken at once
    runs = (await api.http.get(f"{one}/runs", headers=api.admin())).json()
    assert [r["id"] for r in runs["runs"]] == [queued.json()["run_id"]]
    assert runs["runs"][0]["trigger_type"] == "manual"
    assert (await api.http.delete(one, headers=api.admin())).status_code == 204
    assert (await api.http.get(one, headers=api.admin())).status_code == 404
    actions = [e.action for e in await audit(api)]
    for action in ("job.create", "job.update", "job.pause", "job.resume", "job.run", "job.delete"):
        assert action in actions


async def test_runs_page_with_a_cursor_newest_first(api):
    job = await api.job()
    ids = [await add_run(api, job["id"], status="completed") for _ in range(5)]
    url = f"/api/repos/{REPO_A}/schedules/{job['id']}/runs?limit=2"
    seen, cursor = [], None
    for _ in range(5):
        answer = (
            await api.http.get(url + (f"&cursor={cursor}" if cursor else ""), headers=api.admin())
        ).json()
        seen += [r["id"] for r in answer["runs"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    for nonsense in ("nonsense", "i³"):  # "³" is a digit to isdigit(), not to int()
        bad = await api.http.get(url + f"&cursor={nonsense}", headers=api.admin())
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"cron_expression": "0 25 * * *"}, "cron_expression", "hour 25"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"command_id": "issue/nope"}, "body", "unknown command_id"),
        ({"filter_query": "state:open bogus:1"}, "filter_query", "bogus"),
        ({"max_items": 0}, "max_items", "greater than or equal to 1"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
        ({"name": ""}, "name", "at least 1 character"),
    ],
)
async def test_invalid_schedules_are_refused_with_field_and_reason(api, body, field, words):
    good = {"name": "Daily", "cron_expression": "0 9 * * *", "command_id": "issue/triage"}
    answer = await api.http.post(
        f"/api/repos/{REPO_A}/schedules", headers=api.admin(), json={**good, **body}
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()["detail"][0]
    assert problem["field"] == field and words in problem["reason"]
    assert (await api.http.get(f"/api/repos/{REPO_A}/schedules", headers=api.admin())).json() == []


async def test_bad_requests_get_clear_4xx_answers(api):
    base = f"/api/repos/{REPO_A}/schedules"
    raw = await api.http.post(
        base, headers={**api.admin(), "Content-Type": "application/json"}, content=b"{not json"
    )
    assert raw.status_code == 400 and "JSON" in raw.json()["error"]
    assert (await api.http.get("/api/repos/999/schedules", headers=api.admin())).status_code == 404
    unicode_digits = ("/api/repos/³/schedules", f"{base}/³", "/api/scheduler/tasks/٣/run")
    for path in (f"{base}/abc", f"{base}/0", f"{base}/{2**64}", "/api/scheduler/tasks/-1"):
        answer = await api.http.get(path, headers=api.admin())
        assert answer.status_code == 404 and answer.json() == {"error": "not found"}
    for path in unicode_digits:  # digits to str.isdigit(), not to int(): once a 500
        answer = await api.http.request(
            "POST" if path.endswith("/run") else "GET", path, headers=api.admin()
        )
        assert answer.status_code in (404, 422), (path, answer.status_code)
    job = await api.job()
    other = f"/api/repos/{REPO_B}/schedules/{job['id']}"
    assert (await api.http.get(other, headers=api.admin())).status_code == 404
    nulled = await api.http.patch(f"{base}/{job['id']}", headers=api.admin(), json={"name": None})
    assert nulled.status_code == 422
    wrong = await api.http.put(f"{base}/{job['id']}", headers=api.admin(), json={})
    assert wrong.status_code == 405


# -- tasks: the same jobs as the schedules ------------------------------------------------------


async def test_a_job_is_one_model_behind_both_route_sets(api):
    job = await api.job()
    task = (await api.http.get(f"/api/scheduler/tasks/{job['id']}", headers=api.admin())).json()
    assert task["cronExpression"] == "0 9 * * 1-5" and task["scheduleType"] == "cron"
    assert task["enabled"] is True and task["repoId"] == REPO_A
    changed = await api.http.patch(
        f"/api/scheduler/tasks/{job['id']}",
        headers=api.admin(),
        json={"enabled": False, "cronExpression": "30 7 * * *", "webhookIds": []},
    )
    assert changed.status_code == 200, changed.text
    seen = (
        await api.http.get(f"/api/repos/{REPO_A}/schedules/{job['id']}", headers=api.admin())
    ).json()
    assert seen["status"] == "paused" and seen["cron_expression"] == "30 7 * * *"
    made = await api.http.post(
        "/api/scheduler/tasks",
        headers=api.admin(),
        json={
            "name": "Weekly",
            "taskType": "optimize",
            "scheduleType": "interval",
            "intervalMinutes": 10080,
            "repo": REPO_A_NAME.lower(),
        },
    )
    assert made.status_code == 201, made.text
    listed = (await api.http.get(f"/api/repos/{REPO_A}/schedules", headers=api.admin())).json()
    weekly = next(j for j in listed if j["name"] == "Weekly")
    assert weekly["command_id"] == "context/optimize" and weekly["interval_minutes"] == 10080


async def test_seed_two_tasks_use_seed_two_names(api):
    made = await api.http.post(
        "/api/scheduler/tasks",
        headers=api.admin(),
        json={
            "name": "Low Score Alert",
            "taskType": "analyze",
            "scheduleType": "threshold",
            "thresholdMetric": "optimization_score",
            "thresholdOperator": "lt",
            "thresholdValue": 60,
            "repoId": REPO_A,
            "notifyOnSuccess": True,
        },
    )
    assert made.status_code == 201, made.text
    task = made.json()
    assert task["threshold"]["metric"] == "context_score"  # the task API's name, mapped
    assert task["thresholdMetric"] == "optimization_score" and task["thresholdValue"] == 60
    assert task["scheduleType"] == "threshold" and task["notifyOnSuccess"] is True
    raised = await api.http.patch(
        f"/api/scheduler/tasks/{task['id']}", headers=api.admin(), json={"thresholdValue": 40}
    )
    assert raised.json()["threshold"]["value"] == 40
    assert raised.json()["threshold"]["operator"] == "lt"
    missing = await api.http.post(
        "/api/scheduler/tasks",
        headers=api.admin(),
        json={"name": "x", "taskType": "analyze", "scheduleType": "cron", "repoId": REPO_A},
    )
    assert missing.status_code == 422
    assert missing.json()["detail"] == [
        {"field": "cronExpression", "reason": "required for scheduleType 'cron'", "in": "body"}
    ]
    bad = await api.http.post(
        "/api/scheduler/tasks",
        headers=api.admin(),
        json={"name": "x", "taskType": "analyze", "cronExpression": "61 * * * *", "repoId": REPO_A},
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "cronExpression"
    unknown_repo = await api.http.post(
        "/api/scheduler/tasks", headers=api.admin(), json={"name": "x", "repo": "no/such"}
    )
    assert unknown_repo.status_code == 422


async def test_task_list_filters(api):
    await api.job(name="A")
    await api.job(REPO_B, name="B")
    made = await api.http.post(
        "/api/scheduler/tasks",
        headers=api.admin(),
        json={
            "name": "Analyze",
            "taskType": "analyze",
            "scheduleType": "manual",
            "repoId": REPO_A,
            "enabled": False,
        },
    )
    assert made.status_code == 201, made.text

    async def names(query: str) -> list[str]:
        answer = await api.http.get(f"/api/scheduler/tasks?{query}", headers=api.admin())
        assert answer.status_code == 200, answer.text
        return [t["name"] for t in answer.json()["tasks"]]

    assert await names("") == ["A", "B", "Analyze"]
    assert await names(f"repo={REPO_B_NAME}") == ["B"]
    assert await names(f"repo={REPO_A}") == ["A", "Analyze"]
    assert await names("enabled=true") == ["A", "B"]
    assert await names("enabled=false") == ["Analyze"]
    assert await names("taskType=analyze") == ["Analyze"]
    assert await names("task_type=analyze&machineId=ignored") == ["Analyze"]
    assert (
        await api.http.get("/api/scheduler/tasks?enabled=maybe", headers=api.admin())
    ).status_code == 422


# -- executions ---------------------------------------------------------------------------------


async def test_executions_history_detail_retry_and_cancel(api):
    job = await api.job()
    failed = await add_run(api, job["id"], status="failed", error="boom")
    queued = await add_run(api, job["id"])
    running = await add_run(api, job["id"], status="running")
    async with api.db.write() as conn:
        await conn.execute(
            Session.__table__.insert().values(
                run_id=failed,
                item_kind="issue",
                item_number=7,
                runner="claude",
                status="failed",
                comment_url="https://github.com/o/r/issues/7#issuecomment-1",
                event_log=[],
                created_at=api.clock.now(),
            )
        )
    history = (
        await api.http.get(
            f"/api/scheduler/executions?taskId={job['id']}&status=failed", headers=api.admin()
        )
    ).json()
    assert [e["id"] for e in history["executions"]] == [failed]
    detail = (await api.http.get(f"/api/scheduler/executions/{failed}", headers=api.admin())).json()
    assert detail["error"] == "boom" and detail["taskName"] == "Daily triage"
    assert detail["sessions"][0]["itemNumber"] == 7
    assert detail["result"]["comments"] == ["https://github.com/o/r/issues/7#issuecomment-1"]

    retried = await api.http.post(f"/api/scheduler/executions/{failed}/retry", headers=api.admin())
    assert retried.status_code == 202
    new = (
        await api.http.get(
            f"/api/scheduler/executions/{retried.json()['executionId']}", headers=api.admin()
        )
    ).json()
    assert new["triggerType"] == "retry" and new["retryOfId"] == failed
    assert new["status"] == "queued"
    busy = await api.http.post(f"/api/scheduler/executions/{queued}/retry", headers=api.admin())
    assert busy.status_code == 409

    cancelled = await api.http.post(
        f"/api/scheduler/executions/{queued}/cancel", headers=api.admin()
    )
    assert cancelled.json() == {"executionId": queued, "status": "cancelled"}
    asked = await api.http.post(f"/api/scheduler/executions/{running}/cancel", headers=api.admin())
    assert asked.json()["status"] == "running"
    async with api.db.read() as conn:
        row = (await conn.execute(select(Run).where(Run.id == running))).one()
    assert row.cancel_requested_at is not None  # the worker stops it at its next heartbeat
    done = await api.http.post(f"/api/scheduler/executions/{failed}/cancel", headers=api.admin())
    assert done.status_code == 409
    actions = [e.action for e in await audit(api)]
    assert actions.count("run.cancel") == 2 and "run.retry" in actions


async def test_executions_are_paged_with_cursors(api):
    job = await api.job()
    ids = [await add_run(api, job["id"], status="completed") for _ in range(7)]
    seen, cursor = [], None
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (
            await api.http.get(f"/api/scheduler/executions?{query}", headers=api.admin())
        ).json()
        seen += [e["id"] for e in page["executions"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    too_many = await api.http.get("/api/scheduler/executions?limit=1000", headers=api.admin())
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["field"] == "limit"


async def test_deleting_a_job_leaves_nothing_running(api):
    job = await api.job()
    queued = await add_run(api, job["id"])
    running = await add_run(api, job["id"], status="running")
    assert (
        await api.http.delete(f"/api/scheduler/tasks/{job['id']}", headers=api.admin())
    ).status_code == 204
    async with api.db.read() as conn:
        rows = {r.id: r for r in (await conn.execute(select(Run))).all()}
    # Runs cascade with their job on delete; whatever a worker holds was told to stop first.
    assert queued not in rows or rows[queued].status == RunStatus.cancelled.value
    assert running not in rows or rows[running].cancel_requested_at is not None


# -- scheduler control, upcoming, audit ---------------------------------------------------------


async def test_scheduler_status_start_stop_and_upcoming(api):
    await api.job(name="Weekdays")  # 09:00 UTC on weekdays
    status = (await api.http.get("/api/scheduler/status", headers=api.admin())).json()
    assert status["state"] == "running" and status["activeTasks"] == 1
    assert status["nextWakeAt"] == "2026-03-02T09:00:00Z"
    assert status["nextRuns"][0] == {
        "taskId": 1,
        "name": "Weekdays",
        "at": "2026-03-02T09:00:00Z",
        "kind": "run",
    }
    stopped = await api.http.post("/api/scheduler/stop", headers=api.admin())
    assert stopped.json()["state"] == "stopped" and stopped.json()["nextWakeAt"] is None
    assert await api.state.scheduler.is_stopped()
    started = await api.http.post("/api/scheduler/start", headers=api.admin())
    assert started.json()["running"] is True
    upcoming = (await api.http.get("/api/scheduler/upcoming?hours=72", headers=api.admin())).json()
    assert [u["at"] for u in upcoming["upcoming"]] == [
        "2026-03-02T09:00:00Z",
        "2026-03-03T09:00:00Z",
        "2026-03-04T09:00:00Z",
    ]
    for hours in ("0", "-1", "abc", "10000"):
        bad = await api.http.get(f"/api/scheduler/upcoming?hours={hours}", headers=api.admin())
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "hours"
    entries = [e.action for e in await audit(api)]
    assert entries[-2:] == ["scheduler.stop", "scheduler.start"]


async def test_audit_lists_who_did_what_with_before_and_after(api):
    job = await api.job()
    await api.http.patch(
        f"/api/scheduler/tasks/{job['id']}", headers=api.admin(), json={"maxItems": 5}
    )
    page = (
        await api.http.get(
            "/api/scheduler/audit?objectType=job&action=job.update", headers=api.admin()
        )
    ).json()
    entry = page["entries"][0]
    assert entry["actor"] == "token:admin" and entry["objectId"] == str(job["id"])
    assert entry["before"]["max_items"] == 10 and entry["after"]["max_items"] == 5
    everything = (await api.http.get("/api/scheduler/audit?limit=1", headers=api.admin())).json()
    assert len(everything["entries"]) == 1 and everything["nextCursor"]


# -- notifiers (the API's webhooks) -------------------------------------------------------------


async def test_webhook_routes_create_edit_and_delete(api):
    made = await api.http.post(
        "/api/scheduler/webhooks",
        headers=api.admin(),
        json={
            "name": "Alerts",
            "webhookType": "discord",
            "webhookUrl": "https://discord.example/h/1",
            "eventTypes": ["task_failed"],
            "config": {"username": "ghapp"},
        },
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["eventTypes"] == ["task_failed"] and hook["failureCount"] == 0
    one = f"/api/scheduler/webhooks/{hook['id']}"
    assert (await api.http.get(one, headers=api.admin())).json()["name"] == "Alerts"
    disabled = await api.http.patch(one, headers=api.admin(), json={"enabled": False})
    assert disabled.json()["enabled"] is False
    only = await api.http.get("/api/scheduler/webhooks?webhookType=slack", headers=api.admin())
    assert only.json() == {"webhooks": []}
    for body, field in (
        ({"webhookUrl": "ftp://x.example/h"}, "webhookUrl"),
        ({"webhookUrl": "javascript:alert(1)"}, "webhookUrl"),
        ({"eventTypes": ["task_exploded"]}, "eventTypes.0"),
        ({"webhookType": "pager"}, "webhookType"),
    ):
        answer = await api.http.patch(one, headers=api.admin(), json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["detail"][0]["field"].startswith(field.split(".")[0]), answer.text
    assert (await api.http.delete(one, headers=api.admin())).status_code == 204
    assert (await api.http.get(one, headers=api.admin())).status_code == 404
    actions = [e.action for e in await audit(api)]
    assert ["notifier.create", "notifier.update", "notifier.delete"] == [
        a for a in actions if a.startswith("notifier.")
    ]


async def test_openapi_documents_every_route_and_parameter(api):
    answer = await api.http.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    documented = {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    }
    declared = {(e.path, e.method) for e in build_api().endpoints}
    assert documented == declared
    routes = {route.path for route in api.app.routes if route.path.startswith("/api")}
    assert routes == {path for path, _ in documented}
    executions = document["paths"]["/api/scheduler/executions"]["get"]
    names = {p["name"] for p in executions["parameters"]}
    assert {"taskId", "status", "limit", "cursor"} <= names
    tasks = document["paths"]["/api/scheduler/tasks"]["post"]
    assert tasks["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/TaskOut"
    )
    assert "422" in tasks["responses"] and "401" in tasks["responses"]
    assert _document() == document


async def test_task_lists_are_paged(api):
    made = [await api.job(name=f"job {i}") for i in range(5)]
    seen, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.http.get(f"/api/scheduler/tasks?{query}", headers=api.admin())).json()
        assert page["total"] == 5
        seen += [t["id"] for t in page["tasks"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [job["id"] for job in made]


async def test_running_a_task_queues_an_execution_at_once(api):
    job = await api.job()
    api.state.signals.work_available.clear()
    started = await api.http.post(
        f"/api/scheduler/tasks/{job['id']}/run", headers=api.admin(), json={"triggerType": "api"}
    )
    assert started.status_code == 202
    execution = started.json()["executionId"]
    assert api.state.signals.work_available.is_set()
    detail = (
        await api.http.get(f"/api/scheduler/executions/{execution}", headers=api.admin())
    ).json()
    assert (detail["triggerType"], detail["status"], detail["taskId"]) == (
        "api",
        "queued",
        job["id"],
    )
    bad = await api.http.post(
        f"/api/scheduler/tasks/{job['id']}/run", headers=api.admin(), json={"triggerType": "cron"}
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "triggerType"


async def test_seed_two_optimize_tasks_propose_their_changes_as_a_pull_request(api):
    async def made(config):
        answer = await api.http.post(
            "/api/scheduler/tasks",
            headers=api.admin(),
            json={
                "name": "Weekly Optimization",
                "taskType": "optimize",
                "scheduleType": "cron",
                "cronExpression": "0 8 * * 1",
                "repoId": REPO_A,
                "taskConfig": config,
            },
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    pr = await made({"strategy": "moderate", "dryRun": False})
    assert pr["commandId"] == "context/optimize" and pr["taskConfig"]["publish"] == "pr"
    assert (await made({"dryRun": True}))["taskConfig"]["publish"] == "dry_run"
