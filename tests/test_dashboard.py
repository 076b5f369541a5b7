"""The dashboard over HTTP: sign-in, cookies, CSRF, the job form, actions, scope, SSE.

Pages are fetched through httpx's ASGI transport on both backends; the server-sent events
test runs a real uvicorn server, because the ASGI transport only answers once the app has
finished its response.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from ghapp.app import create_app
from ghapp.dashboard.markdown import render_markdown
from ghapp.db.models import AuditEntry, Job, Run, Session
from ghapp.tokens import revoke_token
from tests.api_support import ADMIN_TOKEN, REPO_A, REPO_B, REPO_B_NAME, api_under_test
from tests.conftest import make_settings
from tests.dashboard_support import job_form
from tests.support import add_repository, csrf_of, live_server, sign_in


@pytest.fixture
async def dash(db_url, db, tmp_path) -> AsyncIterator[Any]:
    async with api_under_test(db_url, db, tmp_path) as under_test:
        yield under_test


@asynccontextmanager
async def browser(dash: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser (its own cookies) on the same app."""
    transport = httpx.ASGITransport(app=dash.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ghapp.test") as http:
        yield http


async def audit(db: Any, action: str) -> list[Any]:
    async with db.read() as conn:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list((await conn.execute(query)).all())


async def job_row(db: Any, job_id: int) -> Any:
    async with db.read() as conn:
        return (await conn.execute(select(Job).where(Job.id == job_id))).one_or_none()


# -- signing in -----------------------------------------------------------------------------


async def test_every_page_but_login_redirects_to_login(dash) -> None:
    http = dash.http
    for path in (
        "/",
        "/runs",
        "/runs/1",
        "/jobs/new",
        "/notifiers",
        "/events",
        "/dashboard/cron?expr=*",
    ):
        answer = await http.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login"), path
    assert (await http.get("/runs?job=3")).headers["location"] == "/login?next=%2Fruns%3Fjob%3D3"
    refused = await http.post("/jobs/1/pause", data={"csrf_token": "x"})
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    page = await http.get("/login")
    assert page.status_code == 200
    assert '<label for="token">API token</label>' in page.text
    # After signing in, only a path on this server is followed.
    for target, expected in (
        ("/runs?job=3", "/runs?job=3"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\t/evil.example", "/"),
    ):
        async with browser(dash) as other:
            form = await other.get("/login")
            answer = await other.post(
                "/login",
                data={"csrf_token": csrf_of(form.text), "token": ADMIN_TOKEN, "next": target},
            )
            assert answer.headers["location"] == expected, target


async def test_bad_token_is_refused_and_sets_no_session(dash) -> None:
    form = await dash.http.get("/login")
    answer = await dash.http.post(
        "/login", data={"csrf_token": csrf_of(form.text), "token": "not-a-token", "next": "/"}
    )
    assert answer.status_code == 401
    assert "Unknown or revoked token." in answer.text
    assert "ghapp_session" not in answer.headers.get("set-cookie", "")
    assert (await dash.http.get("/")).status_code == 303


async def test_session_cookie_flags_and_contents(dash) -> None:
    form = await dash.http.get("/login")
    answer = await dash.http.post(
        "/login", data={"csrf_token": csrf_of(form.text), "token": dash.scoped_token}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    [cookie] = [c for c in answer.headers.get_list("set-cookie") if c.startswith("ghapp_session=")]
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert "secure" not in flags  # public_url is http here
    value = cookie.split(";")[0].split("=", 1)[1]
    body = value.split(".")[0]
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert dash.scoped_token not in value and ADMIN_TOKEN not in value
    assert data["w"] == "token" and isinstance(data["t"], int) and data["e"] > 0

    # A forged or altered cookie is no session.
    dash.http.cookies.set("ghapp_session", body + ".AAAA")
    assert (await dash.http.get("/")).status_code == 303


async def test_cookie_is_secure_behind_https(db_url, db, tmp_path) -> None:
    await add_repository(db)
    settings = make_settings(
        db_url, tmp_path, admin_token=ADMIN_TOKEN, public_url="https://ghapp.example.com"
    )
    transport = httpx.ASGITransport(app=create_app(settings, db=db))
    async with httpx.AsyncClient(transport=transport, base_url="https://ghapp.test") as http:
        form = await http.get("/login")
        assert "secure" in form.headers["set-cookie"].lower()
        answer = await http.post(
            "/login", data={"csrf_token": csrf_of(form.text), "token": ADMIN_TOKEN}
        )
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


async def test_revoking_the_token_ends_its_sessions(dash) -> None:
    await sign_in(dash.http, dash.scoped_token)
    assert (await dash.http.get("/")).status_code == 200
    await revoke_token(dash.db, "team-b", actor="test")
    assert (await dash.http.get("/")).status_code == 303


async def test_sign_out(dash) -> None:
    csrf = await sign_in(dash.http, ADMIN_TOKEN)
    assert (await dash.http.post("/logout", data={})).status_code == 403  # CSRF
    answer = await dash.http.post("/logout", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert (await dash.http.get("/")).status_code == 303


# -- CSRF -----------------------------------------------------------------------------------


async def test_posts_without_the_csrf_token_are_refused(dash) -> None:
    job = await dash.job()
    csrf = await sign_in(dash.http, ADMIN_TOKEN)
    for data, headers in (({}, {}), ({"csrf_token": "wrong"}, {}), ({}, {"X-CSRF-Token": ""})):
        answer = await dash.http.post(f"/jobs/{job['id']}/pause", data=data, headers=headers)
        assert answer.status_code == 403
        assert "CSRF" in answer.text
    refused = await dash.http.post("/jobs", data=job_form(name="Sneaky"))
    assert refused.status_code == 403
    assert (await job_row(dash.db, job["id"])).status == "active"
    # The header works as well as the field (the page's script sends it).
    answer = await dash.http.post(f"/jobs/{job['id']}/pause", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 303
    assert (await job_row(dash.db, job["id"])).status == "paused"
    # The sign-in form has its own token.
    await dash.http.get("/login")
    assert (await dash.http.post("/login", data={"token": ADMIN_TOKEN})).status_code == 403


# -- the job form and the overview ------------------------------------------------------------


async def test_create_through_the_form_then_see_it_in_the_overview(dash) -> None:
    csrf = await sign_in(dash.http, ADMIN_TOKEN)
    page = await dash.http.get("/jobs/new")
    assert page.status_code == 200
    for preset in ("0 9 * * 1-5", "0 * * * *", "0 0 * * *", "0 9 * * 1"):
        assert f'data-cron="{preset}"' in page.text
    assert '<optgroup label="prs" data-target="prs">' in page.text
    assert re.search(r'<option value="186853002">Codertocat/Hello-World</option>', page.text)
    assert 'value="UTC"' in page.text  # the browser's zone replaces it (script)

    bad = await dash.http.post(
        "/jobs", data={**job_form(cron_expression="0 25 * * *"), "csrf_token": csrf}
    )
    assert bad.status_code == 422
    error = re.search(r'<p class="field-error" id="cron_expression-error">([^<]*)</p>', bad.text)
    assert error and "hour 25 out of range 0-23" in error.group(1)
    assert 'value="0 25 * * *"' in bad.text  # the user's value, kept
    assert 'aria-describedby="cron_expression-help cron_expression-error"' in bad.text
    assert 'value="Weekday triage"' in bad.text

    unknown = await dash.http.post("/jobs", data={**job_form(runner="shell"), "csrf_token": csrf})
    assert unknown.status_code == 422
    # Named as the form labels the field, not by its internal name.
    assert (
        'id="shell_command-error">“Shell command” is required for the shell runner' in unknown.text
    )

    made = await dash.http.post("/jobs", data={**job_form(), "csrf_token": csrf})
    assert made.status_code == 303
    async with dash.db.read() as conn:
        [job] = (await conn.execute(select(Job))).all()
    assert (job.name, job.repo_id, job.cron_expression, job.created_by) == (
        "Weekday triage",
        REPO_A,
        "0 9 * * 1-5",
        "token:admin",
    )

    assert made.headers["location"].startswith(f"/jobs/{job.id}?notice=")  # its own page
    page = await dash.http.get(made.headers["location"])
    assert "Created the job “Weekday triage”." in page.text
    overview = await dash.http.get("/")
    row = re.search(rf'<tr id="job-{job.id}".*?</tr>', overview.text, re.S)
    assert row
    assert '<td class="schedule">At 09:00, Monday through Friday</td>' in row.group(0)
    # Now is Monday 08:00 UTC: the next run is in an hour, with the exact time on hover.
    assert (
        '<time datetime="2026-03-02T09:00:00+00:00" title="2026-03-02 09:00:00 UTC">'
        "in 1 hour</time>"
    ) in row.group(0)
    assert "issue/triage on issues" in row.group(0)


async def test_the_form_s_check_runs_box_is_on_for_a_new_job_and_can_be_cleared(dash) -> None:
    csrf = await sign_in(dash.http, ADMIN_TOKEN)
    page = await dash.http.get("/jobs/new")
    assert re.search(
        r'<input id="checks" name="checks" type="checkbox" value="1" checked', page.text
    )
    form = {**job_form(target_type="prs", command_id="pr/review"), "csrf_token": csrf}
    del form["checks"]  # the box cleared: a browser sends nothing for it
    assert (await dash.http.post("/jobs", data=form)).status_code == 303
    async with dash.db.read() as conn:
        [job] = (await conn.execute(select(Job))).all()
    assert job.checks is False
    edit = await dash.http.get(f"/jobs/{job.id}/edit")
    assert '<input id="checks" name="checks" type="checkbox" value="1">' in edit.text


async def test_edit_keeps_values_and_config_jobs_are_read_only(dash) -> None:
    job = await dash.job(name="Nightly", cron_expression="0 2 * * *")
    csrf = await sign_in(dash.http, ADMIN_TOKEN)
    form = await dash.http.get(f"/jobs/{job['id']}/edit")
    assert form.status_code == 200 and 'value="0 2 * * *"' in form.text
    assert "At 02:00" in form.text  # the preview, rendered on the server too
    saved = await dash.http.post(
        f"/jobs/{job['id']}",
        data={
            **job_form(name="Nightly", cron_expression="30 3 * * *", timezone="Europe/Berlin"),
            "csrf_token": csrf,
        },
    )
    assert saved.status_code == 303
    row = await job_row(dash.db, job["id"])
    assert (row.cron_expression, row.timezone) == ("30 3 * * *", "Europe/Berlin")
    [entry] = await audit(dash.db, "job.update")
    assert entry.actor == "token:admin" and entry.after["cron_expression"] == "30 3 * * *"

    async with dash.db.write() as conn:
        await conn.execute(update(Job).where(Job.id == job["id"]).values(source="config"))
    page = await dash.http.get("/")
    assert f'id="edit-{job["id"]}"' not in page.text and f'id="delete-{job["id"]}"' not in page.text
    assert (await dash.http.get(f"/jobs/{job['id']}/edit")).status_code == 409
    refused = await dash.http.post(f"/jobs/{job['id']}", data={**job_form(), "csrf_token": csrf})
    assert refused.status_code == 409
    assert (
        await dash.http.post(f"/jobs/{job['id']}/delete", data={"csrf_token": csrf})
    ).status_code == 409


async def test_trigger_summaries_and_an_event_job_round_trip(dash) -> None:
    csrf = await sign_in(dash.http, ADMIN_TOKEN)
    made = await dash.http.post(
        "/jobs",
        data={
            **job_form(
                name="Low score",
                cron_expression="",
                threshold_metric="context_score",
                threshold_operator="lt",
                threshold_value="60",
                threshold_check_interval_minutes="60",
                event_triggers="issues.opened",
                command_triggers="/triage",
                target_type="codebase",
                command_id="context/optimize",
            ),
            "csrf_token": csrf,
        },
    )
    assert made.status_code == 303, made.text
    await dash.job(name="Every 90", cron_expression=None, interval_minutes=90)
    await dash.job(name="By hand", cron_expression=None)
    page = await dash.http.get("/")
    schedules = dict(
        re.findall(
            r'class="job-name"[^>]*>([^<]+)</a>.*?<td class="schedule">([^<]*)</td>',
            page.text,
            re.S,
        )
    )
    assert schedules == {
        "Low score": "when context_score &lt; 60, checked every hour · on issues.opened · /triage",
        "Every 90": "every 90 minutes",
        "By hand": "manual",
    }
    async with dash.db.read() as conn:
        job = (await conn.execute(select(Job).where(Job.name == "Low score"))).one()
    assert job.threshold["value"] == 60 and job.event_triggers[0]["event"] == "issues.opened"
    form = await dash.http.get(f"/jobs/{job.id}/edit")
    assert ">issues.opened</textarea>" in form.text and ">/triage</textarea>" in form.text
    assert '<option value="context_score" selected>' in form.text
    assert 'name="threshold_value" type="number" value="60"' in form.text
    # Saved again unchanged: nothing moves.
    again = await dash.http.post(
        f"/jobs/{job.id}",
        data={
            **job_form(
                name="Low score",
                cron_expression="",
                threshold_metric="context_score",
                threshold_operator="lt",
                threshold_value="60",
                threshold_check_interval_minutes="60",
                event_triggers="issues.opened",
                command_triggers="/triage",
                target_type="codebase",
                command_id="context/optimize",
            ),
            "csrf_token": csrf,
        },
    )
    assert again.status_code == 303
    two = await dash.http.post(
        f"/jobs/{job.id}",
        data={
            **job_form(name="Low score", cron_expression="0 9 * * *", interval_minutes="5"),
            "csrf_token": csrf,
        },
    )
    assert two.status_code == 422
    assert "a job has at most one time trigger" in two.text
    assert 'id="cron_expression-error">a job has at most one time trigger' in two.text


async def test_a_repository_command_stays_choosable_on_edit(dash) -> None:
    job = await dash.job()
    async with dash.db.write() as conn:  # as if chosen from the repository's .claude/commands
        await conn.execute(update(Job).where(Job.id == job["id"]).values(command_id="team/sweep"))
    await sign_in(dash.http, ADMIN_TOKEN)
    form = await dash.http.get(f"/jobs/{job['id']}/edit")
    assert '<option value="team/sweep" selected>team/sweep (repository)</option>' in form.text


async def test_empty_state(dash) -> None:
    await sign_in(dash.http, ADMIN_TOKEN)
    page = await dash.http.get("/")
    assert 'No scheduled jobs — <a href="/jobs/new">create one</a>' in page.text


async def test_cron_preview_endpoint(dash) -> None:
    await sign_in(dash.http, ADMIN_TOKEN)
    answer = await dash.http.get(
        "/dashboard/cron", params={"expr": "0 9 * * 1-5", "tz": "Europe/Berlin"}
    )
    body = answer.json()
    assert body["description"] == "At 09:00, Monday through Friday" and body["error"] is None
    # Now is Monday 08:00 UTC, 09:00 in Berlin: the next run is on Tuesday.
    assert body["next"] == [f"2026-03-0{day}T09:00:00+01:00" for day in (3, 4, 5, 6, 9)]
    assert body["display"][0] == "Tue 2026-03-03 09:00 CET (08:00 UTC)"
    bad = (await dash.http.get("/dashboard/cron", params={"expr": "0 25 * * *"})).json()
    assert bad["next"] == [] and "hour 25 out of range 0-23" in bad["error"]


# -- actions, audited -----------------------------------------------------------------------


async def test_pause_resume_run_delete_are_applied_and_audited(dash) -> None:
    job = await dash.job(repo_id=REPO_B)
    job_id = job["id"]
    csrf = await sign_in(dash.http, dash.scoped_token)  # the token named team-b

    paused = await dash.http.post(f"/jobs/{job_id}/pause", data={"csrf_token": csrf, "next": "/"})
    assert paused.status_code == 303 and paused.headers["location"].startswith("/?notice=")
    row = await job_row(dash.db, job_id)
    assert row.status == "paused" and row.next_run_at is None
    page = await dash.http.get(paused.headers["location"])
    assert "Paused “Daily triage”." in page.text and f'id="resume-{job_id}"' in page.text

    resumed = await dash.http.post(
        f"/jobs/{job_id}/resume",
        data={"csrf_token": csrf},
        headers={"X-Requested-With": "ghapp-dashboard"},
    )
    assert resumed.json()["ok"] is True  # what the page's script gets
    assert (await job_row(dash.db, job_id)).status == "active"

    ran = await dash.http.post(f"/jobs/{job_id}/run", data={"csrf_token": csrf})
    assert ran.status_code == 303
    async with dash.db.read() as conn:
        [run] = (await conn.execute(select(Run))).all()
    assert ran.headers["location"].startswith(f"/runs/{run.id}?")
    assert (run.status, run.trigger_type, run.trigger_detail["requested_by"]) == (
        "queued",
        "manual",
        "token:team-b",
    )
    overview = await dash.http.get("/")
    assert f'<a href="/runs/{run.id}"><span class="badge busy">queued</span></a>' in overview.text

    confirm = await dash.http.get(f"/jobs/{job_id}/delete")
    assert confirm.status_code == 200 and "Delete “Daily triage”?" in confirm.text
    deleted = await dash.http.post(f"/jobs/{job_id}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert await job_row(dash.db, job_id) is None

    for action in ("job.pause", "job.resume", "job.run", "job.delete"):
        [entry] = await audit(dash.db, action)
        assert entry.actor == "token:team-b" and entry.object_id == str(job_id), action


async def test_run_page_retry_and_cancel(dash) -> None:
    job = await dash.job()
    run_id = await dash.state.jobs.run_now(job["id"], actor="test")
    csrf = await sign_in(dash.http, ADMIN_TOKEN)
    page = await dash.http.get(f"/runs/{run_id}")
    assert page.status_code == 200 and 'id="cancel"' in page.text and 'id="retry"' not in page.text

    cancelled = await dash.http.post(f"/runs/{run_id}/cancel", data={"csrf_token": csrf})
    assert cancelled.status_code == 303
    page = await dash.http.get(f"/runs/{run_id}")
    assert '<span class="badge muted">cancelled</span>' in page.text and 'id="retry"' in page.text
    assert (
        await dash.http.post(f"/runs/{run_id}/cancel", data={"csrf_token": csrf})
    ).status_code == 409

    retried = await dash.http.post(f"/runs/{run_id}/retry", data={"csrf_token": csrf})
    assert retried.status_code == 303
    async with dash.db.read() as conn:
        newest = (await conn.execute(select(Run).order_by(Run.id.desc()))).first()
    assert newest.retry_of_id == run_id and retried.headers["location"].startswith(
        f"/runs/{newest.id}?"
    )
    [entry] = await audit(dash.db, "run.retry")
    assert entry.actor == "token:admin"

    history = await dash.http.get("/runs", params={"status": "cancelled"})
    assert f'id="run-{run_id}"' in history.text and f'id="run-{newest.id}"' not in history.text
    assert (await dash.http.get("/runs", params={"status": "bogus"})).status_code == 404


async def test_run_history_pages_with_a_cursor(dash) -> None:
    job = await dash.job()
    ids = [await dash.state.jobs.run_now(job["id"], actor="test") for _ in range(55)]
    await sign_in(dash.http, ADMIN_TOKEN)
    first = await dash.http.get("/runs", params={"job": job["id"]})
    shown = [int(x) for x in re.findall(r'<tr id="run-(\d+)"', first.text)]
    assert shown == ids[::-1][:50]
    older = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert older
    second = await dash.http.get(older.group(1).replace("&amp;", "&"))
    assert [int(x) for x in re.findall(r'<tr id="run-(\d+)"', second.text)] == ids[::-1][50:]
    assert 'rel="next"' not in second.text


# -- scope ----------------------------------------------------------------------------------


async def test_a_scoped_token_sees_and_acts_only_on_its_repositories(dash) -> None:
    mine = await dash.job(repo_id=REPO_B, name="Mine")
    other = await dash.job(repo_id=REPO_A, name="Not mine")
    other_run = await dash.state.jobs.run_now(other["id"], actor="test")
    my_run = await dash.state.jobs.run_now(mine["id"], actor="test")
    csrf = await sign_in(dash.http, dash.scoped_token)

    overview = await dash.http.get("/")
    assert "Mine" in overview.text and "Not mine" not in overview.text
    assert REPO_B_NAME in overview.text and "Codertocat/Hello-World" not in overview.text
    runs = await dash.http.get("/runs")
    assert f'id="run-{my_run}"' in runs.text and f'id="run-{other_run}"' not in runs.text
    form = await dash.http.get("/jobs/new")
    assert f'<option value="{REPO_B}" selected>' in form.text  # the only choice
    assert f'<option value="{REPO_A}"' not in form.text

    for path in (
        f"/jobs/{other['id']}/edit",
        f"/jobs/{other['id']}/delete",
        f"/runs/{other_run}",
        f"/runs?job={other['id']}",
    ):
        answer = await dash.http.get(path)
        assert answer.status_code == 404, path  # as if it did not exist
        assert "Not found" in answer.text
    for action in ("run", "pause", "resume", "delete"):
        answer = await dash.http.post(f"/jobs/{other['id']}/{action}", data={"csrf_token": csrf})
        assert answer.status_code == 404, action
    for action in ("retry", "cancel"):
        answer = await dash.http.post(f"/runs/{other_run}/{action}", data={"csrf_token": csrf})
        assert answer.status_code == 404, action
    made = await dash.http.post(
        "/jobs", data={**job_form(name="Sneaky", repo_id=str(REPO_A)), "csrf_token": csrf}
    )
    assert made.status_code == 404
    wide = await dash.http.post(
        "/jobs",
        data={**job_form(repo_selection="all", installation_id="957387"), "csrf_token": csrf},
    )
    assert wide.status_code in (403, 422)
    moved = await dash.http.post(
        f"/jobs/{mine['id']}",
        data={**job_form(name="Mine", repo_id=str(REPO_A)), "csrf_token": csrf},
    )
    assert moved.status_code == 404
    assert (await job_row(dash.db, other["id"])).status == "active"
    assert (await job_row(dash.db, mine["id"])).repo_id == REPO_B
    async with dash.db.read() as conn:
        assert len((await conn.execute(select(Job))).all()) == 2

    # Notifiers: one for every repository is the admin's; one limited to REPO_B is also ours.
    everyone = await dash.state.notifiers.create(
        {"name": "all-repos", "type": "generic", "url": "http://127.0.0.1:9/a"}, actor="test"
    )
    ours = await dash.state.notifiers.create(
        {
            "name": "team-b-hook",
            "type": "generic",
            "url": "http://127.0.0.1:9/b",
            "repo_ids": [REPO_B],
        },
        actor="test",
    )
    listing = await dash.http.get("/notifiers")
    assert "team-b-hook" in listing.text and "all-repos" not in listing.text
    assert (await dash.http.get(f"/notifiers/{everyone.id}/edit")).status_code == 404
    assert (await dash.http.get(f"/notifiers/{ours.id}/edit")).status_code == 200
    refused = await dash.http.post(f"/notifiers/{everyone.id}/disable", data={"csrf_token": csrf})
    assert refused.status_code == 404


# -- notifiers ------------------------------------------------------------------------------


async def test_notifier_form_list_enable_disable_delete(dash) -> None:
    csrf = await sign_in(dash.http, ADMIN_TOKEN)
    url = "https://hooks.slack.com/services/T000/B000/very-secret-part"
    bad = await dash.http.post(
        "/notifiers",
        data={
            "csrf_token": csrf,
            "name": "chat",
            "type": "slack",
            "url": "ftp://nope",
            "event_types": "task_failed",
        },
    )
    assert bad.status_code == 422
    assert 'id="url-error">must be an http:// or https:// URL with a host' in bad.text
    made = await dash.http.post(
        "/notifiers",
        data={
            "csrf_token": csrf,
            "name": "chat",
            "type": "slack",
            "url": url,
            "enabled": "1",
            "event_types": ["task_failed", "task_completed"],
        },
    )
    assert made.status_code == 303
    [row] = await dash.state.notifiers.list()
    listing = await dash.http.get("/notifiers")
    assert "very-secret-part" not in listing.text and "https://hooks.slack.com/****" in listing.text
    assert "task failed, task completed" in listing.text
    edit = await dash.http.get(f"/notifiers/{row.id}/edit")
    assert "very-secret-part" not in edit.text

    kept = await dash.http.post(
        f"/notifiers/{row.id}",
        data={
            "csrf_token": csrf,
            "name": "chat 2",
            "type": "slack",
            "url": "",
            "event_types": "task_failed",
            "enabled": "1",
        },
    )
    assert kept.status_code == 303
    row = await dash.state.notifiers.get(row.id)
    assert row.name == "chat 2" and dash.state.notifiers.target_of(row) == {"url": url}

    await dash.http.post(f"/notifiers/{row.id}/disable", data={"csrf_token": csrf})
    assert (await dash.state.notifiers.get(row.id)).enabled is False
    await dash.http.post(f"/notifiers/{row.id}/enable", data={"csrf_token": csrf})
    assert (await dash.state.notifiers.get(row.id)).enabled is True
    gone = await dash.http.post(f"/notifiers/{row.id}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 303
    assert await dash.state.notifiers.list() == []
    actions = [entry.action for entry in await audit(dash.db, "notifier.update")]
    assert len(actions) == 3 and all(
        e.actor == "token:admin" for e in await audit(dash.db, "notifier.update")
    )


# -- results rendered safely -------------------------------------------------------------------


def test_markdown_is_escaped_and_links_are_http_only() -> None:
    html = str(
        render_markdown(
            "# Findings <img src=x onerror=alert(1)>\n\n"
            "Run <script>alert('x')</script> **now**; see [docs](https://example.com/a?b=1&c=2)\n"
            "and [click](javascript:alert(1)) or [data](data:text/html,<b>x</b>).\n\n"
            "- one `<b>code</b>`\n- two\n\n"
            "```\n<script>evil()</script>\n```\n"
        )
    )
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<h1>Findings &lt;img src=x onerror=alert(1)&gt;</h1>" in html
    assert (
        '<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">docs</a>'
        in html
    )
    assert "javascript:" not in html and "data:text" not in html
    assert "and click or data." in html
    assert "<ul><li>one <code>&lt;b&gt;code&lt;/b&gt;</code></li><li>two</li></ul>" in html
    assert "<pre><code>&lt;script&gt;evil()&lt;/script&gt;</code></pre>" in html
    assert "<strong>now</strong>" in html


async def test_run_page_shows_sessions_safely(dash) -> None:
    job = await dash.job()
    run_id = await dash.state.jobs.run_now(job["id"], actor="test")
    async with dash.db.write() as conn:
        await conn.execute(
            Session.__table__.insert().values(
                run_id=run_id,
                item_kind="issue",
                item_number=7,
                item_title="<i>Crash</i>",
                runner="claude",
                status="completed",
                cost_usd=0.42,
                num_turns=6,
                duration_ms=61_000,
                result_text="## Triage\n<script>alert(1)</script>\n[x](javascript:alert(1))",
                comment_url="https://github.com/Codertocat/Hello-World/issues/7#issuecomment-1",
                event_log=[
                    {"type": "tool_use", "tool": "Read"},
                    {"type": "result", "text": "done"},
                ],
            )
        )
    await sign_in(dash.http, ADMIN_TOKEN)
    page = await dash.http.get(f"/runs/{run_id}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text and "javascript:" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<h2>Triage</h2>" in page.text
    assert "Issue #7: &lt;i&gt;Crash&lt;/i&gt;" in page.text
    assert (
        '<a href="https://github.com/Codertocat/Hello-World/issues/7#issuecomment-1" '
        'class="comment-link"'
    ) in page.text
    assert "$0.42" in page.text and "1 min 1 s" in page.text and "<dd>6</dd>" in page.text
    assert "tool_use: Read" in page.text and "result: done" in page.text
    fragment = await dash.http.get(f"/runs/{run_id}", params={"fragment": "detail"})
    assert "<html" not in fragment.text and "Issue #7" in fragment.text


async def test_pages_send_security_headers(dash) -> None:
    await sign_in(dash.http, ADMIN_TOKEN)
    page = await dash.http.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    static = await dash.http.get("/dashboard/static/app.js")
    assert static.status_code == 200 and "EventSource" in static.text


# -- live updates ----------------------------------------------------------------------------


async def read_event(lines: Any) -> tuple[str, dict[str, Any]]:
    """The next event (name, data) of a text/event-stream, skipping comments and retry."""
    name, data = "message", ""
    async for line in lines:
        if line == "":
            if data:
                return name, json.loads(data)
            name = "message"
            continue
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data += line.split(":", 1)[1].strip()
    raise AssertionError("the stream ended")


async def test_events_stream_announces_a_queued_run(db_url, db, tmp_path) -> None:
    await add_repository(db)
    settings = make_settings(
        db_url, tmp_path, admin_token=ADMIN_TOKEN, secret_key=Fernet.generate_key().decode()
    )
    app = create_app(settings, db=db)
    state = app.state.ghapp
    job = await state.jobs.create(
        {"name": "Triage", "repo_id": REPO_A, "command_id": "issue/triage"}, actor="test"
    )
    async with live_server(app) as base, httpx.AsyncClient(base_url=base) as http:
        await sign_in(http, ADMIN_TOKEN)
        async with http.stream("GET", "/events", timeout=30) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            name, hello = await read_event(lines)
            assert name == "hello"
            # Queued by another client (here: the service, as the API or the CLI would).
            run_id = await state.jobs.run_now(job.id, actor="test")
            name, change = await read_event(lines)
            assert name == "change"
            assert change["fingerprint"] != hello["fingerprint"]
            assert change["fingerprint"].split(".")[0] == str(run_id)
        # A page that was rendered before the change is told at once.
        async with http.stream(
            "GET", "/events", params={"since": hello["fingerprint"]}, timeout=30
        ) as stream:
            name, _ = await read_event(stream.aiter_lines())
            assert name == "change"


async def test_skipped_runs_sessions_and_items_say_why(dash) -> None:
    from ghapp.dashboard.runs import ITEMS_SKIPPED_REASON
    from ghapp.worker.prepare import RECENT

    assert f"in the last {RECENT.days} days" in ITEMS_SKIPPED_REASON
    job = await dash.job()
    skipped = await dash.state.jobs.run_now(job["id"], actor="test")
    partial = await dash.state.jobs.run_now(job["id"], actor="test")
    reason = "no changed file matches <b>docs/**</b> (3 files changed)"
    async with dash.db.write() as conn:
        # What the worker writes for a paths filter that matched nothing, and for a run
        # whose search found items this job finished recently.
        await conn.execute(
            update(Run).where(Run.id == skipped).values(status="skipped", error=reason)
        )
        await conn.execute(
            update(Run)
            .where(Run.id == partial)
            .values(status="completed", items_found=3, items_processed=1, items_skipped=2)
        )
        await conn.execute(
            Session.__table__.insert().values(
                run_id=partial,
                item_kind="issue",
                item_number=8,
                runner="claude",
                status="skipped",
                error="refused: <i>stranger</i> may not run /triage",
            )
        )
    await sign_in(dash.http, ADMIN_TOKEN)
    escaped = "no changed file matches &lt;b&gt;docs/**&lt;/b&gt; (3 files changed)"
    page = await dash.http.get(f"/runs/{skipped}")
    assert f'id="run-skipped"><strong>Skipped:</strong> {escaped}</p>' in page.text
    assert 'id="run-error"' not in page.text
    page = await dash.http.get(f"/runs/{partial}")
    assert f'2 skipped <small class="skip-reason">({ITEMS_SKIPPED_REASON})</small>' in page.text
    assert (
        "<strong>Skipped:</strong> refused: &lt;i&gt;stranger&lt;/i&gt; may not run /triage"
        in page.text
    )
    history = await dash.http.get("/runs", params={"job": job["id"]})
    row = history.text.split(f'id="run-{skipped}"', 1)[1].split("</tr>", 1)[0]
    assert f'<small class="skip-reason">{escaped}</small>' in row
    row = history.text.split(f'id="run-{partial}"', 1)[1].split("</tr>", 1)[0]
    assert f'title="{ITEMS_SKIPPED_REASON}">2 skipped</span>' in row


async def test_the_edit_form_says_which_advanced_settings_differ(dash) -> None:
    plain = await dash.job(name="Plain")
    tuned = await dash.job(name="Tuned", timeout_seconds=1200, max_retries=0)
    await sign_in(dash.http, ADMIN_TOKEN)
    form = await dash.http.get(f"/jobs/{plain['id']}/edit")
    assert '<details class="advanced" id="advanced">' in form.text  # closed, nothing changed
    assert "changed from the defaults" not in form.text
    form = await dash.http.get(f"/jobs/{tuned['id']}/edit")
    assert '<details class="advanced" id="advanced">' in form.text
    assert "(2 changed from the defaults)" in form.text


def test_messages_name_fields_by_their_labels() -> None:
    from ghapp.dashboard.forms import FORM_FIELDS, LABELS, in_labels

    assert set(LABELS) == set(FORM_FIELDS)
    assert in_labels("a job needs a command_id or a custom_prompt") == (
        "a job needs a “Command” or a “Custom prompt”"
    )
    assert in_labels("cronExpression and threshold_filter_query") == (
        "“Cron expression” and “Issues to count (open_issues)”"
    )
    assert in_labels("my_command_id_x stays") == "my_command_id_x stays"
