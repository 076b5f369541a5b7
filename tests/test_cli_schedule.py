"""``ghapp schedule …`` against a live server: real HTTP, real database, real effects.

The server runs on the test's event loop, so each command runs in a thread
(``asyncio.to_thread``) the way a user's shell would run it beside the server.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner, Result

from ghapp.app import create_app
from ghapp.cli.main import app as cli_app
from ghapp.db.models import AuditEntry, Job, Notifier, Run
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from tests.cli_support import cli_env, run_in_terminal, table_rows
from tests.conftest import make_settings
from tests.support import add_repository, live_server

ADMIN = "admin-token-for-the-cli-tests"
REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
runner = CliRunner()


@dataclass
class Server:
    base: str
    db: Any
    http: httpx.AsyncClient

    async def cli(self, *args: str, token: str | None = ADMIN, input: str | None = None) -> Result:
        return await ghapp(self.base, *args, token=token, input=input)

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, path, json=body)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    async def jobs(self) -> list[Any]:
        async with self.db.read() as conn:
            return list((await conn.execute(select(Job).order_by(Job.id))).all())

    async def job(self, job_id: int) -> Any:
        async with self.db.read() as conn:
            return (await conn.execute(select(Job).where(Job.id == job_id))).one_or_none()


async def ghapp(
    base: str, *args: str, token: str | None = ADMIN, input: str | None = None
) -> Result:
    """``ghapp ARGS`` as a user runs it beside the server (a wide terminal)."""
    env = {"GHAPP_URL": base, "GHAPP_TOKEN": token, "COLUMNS": "240"}
    return await asyncio.to_thread(runner.invoke, cli_app, list(args), input=input, env=env)


async def in_terminal(base: str, args: list[str], answers: list[str]) -> tuple[int, str]:
    """The real ``ghapp`` on a pseudo-terminal, beside the server (see cli_support)."""
    env = cli_env(base, ADMIN)
    return await asyncio.to_thread(run_in_terminal, args, answers, env)


def one_line_error(result: Result, code: int = 1) -> str:
    """The command failed with ``code`` and said why in one line on stderr, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
async def server(db_url, db, tmp_path):
    await add_repository(db)
    secret_key = Fernet.generate_key().decode()  # notifier URLs are encrypted with it
    settings = make_settings(db_url, tmp_path, admin_token=ADMIN, secret_key=secret_key)
    app = create_app(settings, db=db)
    async with live_server(app) as base:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as http:
            yield Server(base, db, http)


async def add_task(server: Server, **fields: Any) -> dict[str, Any]:
    body = {"name": "Task", "taskType": "analyze", "repo": REPO, **fields}
    return await server.api("POST", "/api/scheduler/tasks", body)


# -- tasks ----------------------------------------------------------------------------------


async def test_create_with_flags_then_list_in_words(server) -> None:
    result = await server.cli(
        "schedule",
        "create",
        "--name",
        "Weekday analysis",
        "--type",
        "analyze",
        "--repo",
        REPO,
        "--cron",
        "0 9 * * 1-5",
        "--timezone",
        "Europe/Berlin",
    )
    assert result.exit_code == 0, result.output
    [job] = await server.jobs()
    assert (job.name, job.task_type, job.repo_id) == ("Weekday analysis", "analyze", REPO_ID)
    assert (job.cron_expression, job.timezone, job.created_by) == (
        "0 9 * * 1-5",
        "Europe/Berlin",
        "token:admin",
    )
    assert f"created job {job.id}" in result.stdout

    listed = await server.cli("schedule", "list")
    assert listed.exit_code == 0, listed.output
    [row] = table_rows(listed.stdout)
    assert row[:4] == [
        str(job.id),
        "Weekday analysis",
        REPO,
        "At 09:00, Monday through Friday (Europe/Berlin)",
    ]
    assert row[5] == "never" and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:00", row[4])

    as_json = json.loads((await server.cli("schedule", "list", "--json")).stdout)
    assert as_json["total"] == 1
    assert as_json["tasks"][0]["cronExpression"] == "0 9 * * 1-5"


async def test_create_turns_check_runs_off_or_leaves_the_default(server) -> None:
    common = ["--type", "custom", "--repo", REPO, "--cron", "0 9 * * *", "--target", "prs"]
    for name, flags in (("Quiet", ["--no-checks"]), ("Default", [])):
        prompt = ["--prompt", "Review it"]
        result = await server.cli("schedule", "create", "--name", name, *common, *prompt, *flags)
        assert result.exit_code == 0, result.output
    quiet, default = await server.jobs()
    assert (quiet.name, quiet.checks) == ("Quiet", False)
    assert (default.name, default.checks) == ("Default", True)


async def test_create_asks_for_what_is_missing_on_a_terminal(server) -> None:
    answers = ["Nightly", "health_check", "Codertocat/Hello-World", "0 25 * * *", "30 2 * * *"]
    code, shown = await in_terminal(server.base, ["schedule", "create"], answers)
    assert code == 0, shown
    assert "hour 25 out of range 0-23" in shown  # asked again
    assert "→ At 02:30" in shown  # what the expression means, as typed
    [job] = await server.jobs()
    assert (job.name, job.task_type, job.cron_expression) == (
        "Nightly",
        "health_check",
        "30 2 * * *",
    )
    assert job.command_id == "codebase/health-check"


async def test_create_off_a_terminal_names_what_is_missing_and_asks_nothing(server) -> None:
    result = await server.cli("schedule", "create", "--name", "x", input="answer\n")
    assert one_line_error(result, code=2) == (
        "ghapp schedule create: --type and --repo are missing: give them "
        "(there is no terminal to ask on)"
    )
    custom = await server.cli(
        "schedule", "create", "--name", "x", "--type", "custom", "--repo", REPO
    )
    assert "--prompt is missing" in one_line_error(custom, code=2)
    assert await server.jobs() == []


async def test_invalid_cron_is_one_line_from_the_server(server) -> None:
    result = await server.cli(
        "schedule",
        "create",
        "--name",
        "Bad",
        "--type",
        "analyze",
        "--repo",
        REPO,
        "--cron",
        "0 25 * * *",
    )
    line = one_line_error(result)
    assert line == (  # the option as typed, not the API's field (cronExpression)
        "ghapp schedule create: --cron: cron expression '0 25 * * *': hour 25 out of range 0-23"
    )
    assert await server.jobs() == []


async def test_each_kind_of_schedule_in_words_and_filters(server) -> None:
    await add_task(server, name="Every 90", scheduleType="interval", intervalMinutes=90)
    await add_task(
        server,
        name="On events",
        taskType="custom",
        customPrompt="Look at it",
        targetType="issues",
        eventTriggers=[{"event": "issues.opened"}],
        commandTriggers=["/triage"],
    )
    await add_task(server, name="By hand", taskType="custom", customPrompt="Do it")
    quick = await server.cli(
        "schedule", "quick", "threshold-alert", "--score", "45", "--repo", REPO
    )
    assert quick.exit_code == 0, quick.output
    listed = table_rows((await server.cli("schedule", "list")).stdout)
    assert {row[1]: row[3] for row in listed} == {
        "Every 90": "every 90 minutes",
        "On events": "on issues.opened, /triage",
        "By hand": "manual",
        "Low Score Alert": "when context_score < 45",  # the dashboard's name for the metric
    }
    assert "optimization_score" not in quick.stdout

    paused = (await server.jobs())[0]
    assert (await server.cli("schedule", "disable", str(paused.id))).exit_code == 0
    enabled = json.loads((await server.cli("schedule", "list", "--enabled", "--json")).stdout)
    assert paused.id not in [task["id"] for task in enabled["tasks"]] and enabled["total"] == 3
    unknown = await server.cli("schedule", "list", "--repo", "nobody/nothing")
    assert "unknown repository 'nobody/nothing'" in one_line_error(unknown)


async def test_enable_disable_delete_are_applied_and_audited(server) -> None:
    task = await add_task(server, name="Daily", scheduleType="cron", cronExpression="0 9 * * *")
    disabled = await server.cli("schedule", "disable", str(task["id"]))
    assert disabled.exit_code == 0 and "disabled" in disabled.stdout
    assert (await server.job(task["id"])).status == "paused"
    enabled = await server.cli("schedule", "enable", str(task["id"]))
    assert enabled.exit_code == 0 and "next run" in enabled.stdout
    job = await server.job(task["id"])
    assert job.status == "active" and job.next_run_at is not None

    refused = await server.cli("schedule", "delete", str(task["id"]), input="y\n")
    assert "--yes is missing" in one_line_error(refused, code=2)  # no terminal: not asked
    assert await server.job(task["id"]) is not None
    deleted = await server.cli("schedule", "delete", str(task["id"]), "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert await server.job(task["id"]) is None

    entries = json.loads((await server.cli("schedule", "audit", "--json")).stdout)["entries"]
    actions = [(e["action"], e["actor"]) for e in entries if e["objectId"] == str(task["id"])]
    assert [a for a, _ in actions][:3] == ["job.delete", "job.update", "job.update"]
    assert {actor for _, actor in actions} == {"token:admin"}
    table = (await server.cli("schedule", "audit", "--limit", "1")).stdout
    assert "job.delete" in table and "token:admin" in table


async def test_unknown_ids_are_one_line_404s(server) -> None:
    for args, words in [
        (("schedule", "enable", "999"), "no such job"),
        (("schedule", "run", "999"), "no such job"),
        (("schedule", "delete", "999", "--yes"), "no such job"),
        (("schedule", "retry", "999"), "no such run"),
        (("schedule", "cancel", "999"), "no such run"),
    ]:
        line = one_line_error(await server.cli(*args))
        assert line == f"ghapp {' '.join(args[:2])}: {words}"


async def test_missing_or_refused_token(server) -> None:
    missing = one_line_error(await server.cli("schedule", "list", token=None))
    assert "GHAPP_TOKEN is not set" in missing
    refused = one_line_error(await server.cli("schedule", "status", token="ghapp_wrong"))
    assert "GHAPP_TOKEN was refused: unknown or revoked API token" in refused


async def test_server_not_reachable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    line = one_line_error(await ghapp(base, "schedule", "list"))
    assert line == (
        f"ghapp schedule list: the server at {base} is not reachable (connection refused): "
        "is `ghapp serve` running there?"
    )
    bad_url = one_line_error(await ghapp("localhost:8000", "schedule", "status"), code=2)
    assert "is not an http:// or https:// URL" in bad_url


# -- executions -----------------------------------------------------------------------------


async def test_run_history_cancel_retry(server) -> None:
    task = await add_task(server, name="Analyze")
    started = await server.cli("schedule", "run", str(task["id"]))
    assert started.exit_code == 0, started.output
    async with server.db.read() as conn:
        [run] = (await conn.execute(select(Run))).all()
    assert (run.job_id, run.trigger_type, run.status) == (task["id"], "manual", "queued")
    assert started.stdout.strip() == f"run {run.id} queued"

    history = await server.cli("schedule", "history", "--task", str(task["id"]))
    [row] = table_rows(history.stdout)
    assert row[:4] == [str(run.id), str(task["id"]), "queued", "manual"]
    cancelled = await server.cli("schedule", "cancel", str(run.id))
    assert cancelled.stdout.strip() == f"run {run.id} cancelled"
    again = one_line_error(await server.cli("schedule", "cancel", str(run.id)))
    assert "already ended" in again
    retried = await server.cli("schedule", "retry", str(run.id))
    assert retried.exit_code == 0, retried.output

    page = json.loads((await server.cli("schedule", "history", "--json", "--limit", "5")).stdout)
    assert [(e["status"], e["retryOfId"]) for e in page["executions"]] == [
        ("queued", run.id),
        ("cancelled", None),
    ]
    only = json.loads(
        (await server.cli("schedule", "history", "--status", "cancelled", "--json")).stdout
    )
    assert [e["id"] for e in only["executions"]] == [run.id]


async def test_status_stop_start_upcoming(server) -> None:
    await add_task(server, name="Nine o'clock", scheduleType="cron", cronExpression="0 9 * * *")
    status = await server.cli("schedule", "status")
    assert status.exit_code == 0, status.output
    assert "scheduler running" in status.stdout and "jobs: 1 active, 0 paused" in status.stdout
    assert "Nine o'clock" in status.stdout  # among the next runs

    assert (await server.cli("schedule", "stop")).stdout.strip() == "scheduler stopped"
    state = json.loads((await server.cli("schedule", "status", "--json")).stdout)
    assert (state["running"], state["state"]) == (False, "stopped")
    assert (await server.cli("schedule", "start")).stdout.strip() == "scheduler running"
    async with server.db.read() as conn:
        actions = (
            await conn.execute(
                select(AuditEntry.action, AuditEntry.actor)
                .where(AuditEntry.object_type == "scheduler")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [tuple(a) for a in actions] == [
        ("scheduler.stop", "token:admin"),
        ("scheduler.start", "token:admin"),
    ]

    upcoming = json.loads(
        (await server.cli("schedule", "upcoming", "--hours", "48", "--json")).stdout
    )
    assert upcoming["hours"] == 48 and len(upcoming["upcoming"]) == 2  # two days at 09:00
    assert all(u["at"].endswith("T09:00:00Z") for u in upcoming["upcoming"])
    table = (await server.cli("schedule", "upcoming", "--hours", "48")).stdout
    assert table.count(" 09:00 ") == 2 and "(times in UTC)" in table
    nothing = await server.cli("schedule", "upcoming", "--hours", "0.01")
    assert "nothing fires in the next 0.01 hours" in nothing.stdout


async def test_quick_setups(server) -> None:
    unasked = await server.cli("schedule", "quick", "daily-analysis", input=f"{REPO}\n")
    assert "--repo is missing" in one_line_error(unasked, code=2)  # no job yet, no terminal
    code, shown = await in_terminal(server.base, ["schedule", "quick", "daily-analysis"], [REPO])
    assert code == 0 and "Repository" in shown, shown  # on a terminal it is asked for
    alone = await server.cli("schedule", "quick", "weekly-optimize")  # the only repository
    assert alone.exit_code == 0 and f"using repository {REPO}" in alone.stdout
    alert = await server.cli("schedule", "quick", "threshold-alert", "--repo", REPO)
    assert alert.exit_code == 0, alert.output
    daily, weekly, low = await server.jobs()
    assert (daily.name, daily.cron_expression, daily.task_type) == (
        "Daily Context Analysis",
        "0 9 * * *",
        "analyze",
    )
    assert daily.task_config == {"includeHealthScore": True} and daily.notify_on_failure
    assert (weekly.name, weekly.cron_expression, weekly.repo_id) == (
        "Weekly Optimization",
        "0 8 * * 1",
        REPO_ID,
    )
    # an optimize task proposes its changes as a pull request
    assert weekly.task_config == {"strategy": "moderate", "dryRun": False, "publish": "pr"}
    assert weekly.notify_on_success and weekly.notify_on_failure
    assert (low.name, low.threshold["metric"], low.threshold["operator"]) == (
        "Low Score Alert",
        "context_score",
        "lt",
    )
    assert low.threshold["value"] == 60 and low.task_config == {"alertOnly": True}


# -- run --wait with a real worker ----------------------------------------------------------


@pytest.fixture
async def working_server(db_url, db, tmp_path):
    github = GitHubStandIn(app_id=99)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    git_url = bare_repository(tmp_path, REPO, files={"README.md": "# Hello-World\n"})
    async with github.serve() as github_url:
        await add_repository(db)
        settings = make_settings(
            db_url,
            tmp_path,
            admin_token=ADMIN,
            github_api_url=github_url,
            git_url=git_url,
            app_id=99,
            private_key=github.private_key_pem,
        )
        app = create_app(settings, db=db, workers=1)
        async with live_server(app) as base:
            headers = {"Authorization": f"Bearer {ADMIN}"}
            async with httpx.AsyncClient(base_url=base, headers=headers) as http:
                yield Server(base, db, http)


async def shell_job(server: Server, command: str) -> int:
    job = await server.api(
        "POST",
        f"/api/repos/{REPO_ID}/schedules",
        {
            "name": f"Shell: {command}",
            "runner": "shell",
            "shell_command": command,
            "target_type": "custom",
            "report": "none",
        },
    )
    return int(job["id"])


async def test_run_wait_follows_a_real_run_to_completion(working_server) -> None:
    job_id = await shell_job(working_server, "echo hi")
    result = await working_server.cli("schedule", "run", str(job_id), "--wait", "--poll", "0.05")
    assert result.exit_code == 0, result.output
    async with working_server.db.read() as conn:
        [run] = (await conn.execute(select(Run))).all()
    assert (run.status, run.items_processed) == ("completed", 1)
    assert result.stdout.splitlines()[-1] == (
        f"run {run.id}: completed · 1 of 1 items processed · 1 session"
    )


async def test_run_wait_fails_with_the_runs_error(working_server) -> None:
    job_id = await shell_job(working_server, "exit 3")
    result = await working_server.cli("schedule", "run", str(job_id), "--wait", "--poll", "0.05")
    assert result.exit_code == 1 and "Traceback" not in result.output
    async with working_server.db.read() as conn:
        [run] = (await conn.execute(select(Run))).all()
    assert run.status == "failed"
    *progress, line = result.stderr.strip().splitlines()  # progress lines, then the error
    assert line.startswith(f"ghapp schedule run: run {run.id} failed: ")
    assert line.endswith("exited with code 3")
    assert progress[-1] == f"run {run.id}: failed · 0 of 1 items processed · 1 session"


# -- notifiers ------------------------------------------------------------------------------


@pytest.fixture
async def receiver():
    """A webhook receiver that records what it is sent."""
    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({"ok": True})

    async with live_server(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        yield f"{base}/hook", received


async def notifiers(db) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(select(Notifier).order_by(Notifier.id))).all())


async def test_notifiers_add_list_test_disable_delete(server, receiver) -> None:
    url, received = receiver
    added = await server.cli(
        *("schedule", "notifiers", "add", "--type", "generic", "--url", url),
        *("--name", "ops", "--events", "task_failed,task_completed"),
    )
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("added notifier 1 'ops' (generic, ")
    [row] = await notifiers(server.db)
    assert (row.name, row.type, row.enabled) == ("ops", "generic", True)
    assert row.event_types == ["task_failed", "task_completed"]
    assert url not in row.url_encrypted  # encrypted at rest

    [listed] = table_rows((await server.cli("schedule", "notifiers", "list")).stdout)
    assert listed[:3] == [str(row.id), "ops", "generic"] and url not in listed[3]
    assert listed[4:7] == ["task_failed, task_completed", "yes", "0"]
    hooks = json.loads((await server.cli("schedule", "notifiers", "list", "--json")).stdout)
    assert [h["name"] for h in hooks["webhooks"]] == ["ops"]
    assert hooks["webhooks"][0]["webhookUrl"] != url  # masked by the server

    tested = await server.cli("schedule", "notifiers", "test", str(row.id))
    assert tested.exit_code == 0, tested.output
    assert tested.stdout.startswith("delivered: 200") and len(received) == 1

    assert (await server.cli("schedule", "notifiers", "disable", str(row.id))).exit_code == 0
    assert (await notifiers(server.db))[0].enabled is False
    assert (await server.cli("schedule", "notifiers", "enable", str(row.id))).exit_code == 0
    assert (await notifiers(server.db))[0].enabled is True
    deleted = await server.cli("schedule", "notifiers", "delete", str(row.id), "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert await notifiers(server.db) == []
    gone = one_line_error(await server.cli("schedule", "notifiers", "test", str(row.id)))
    assert gone == "ghapp schedule notifiers test: no such notifier"


async def test_webhooks_is_a_hidden_alias_of_notifiers(server, receiver) -> None:
    url, _ = receiver
    added = await server.cli(
        *("schedule", "webhooks", "add", "--type", "slack", "--url", url, "--name", "old")
    )
    assert added.exit_code == 0, added.output
    assert [row.name for row in await notifiers(server.db)] == ["old"]
    listed = await server.cli("schedule", "webhooks", "list")
    assert "old" in listed.stdout and "Notifiers" in listed.stdout
    shown = (await server.cli("schedule", "--help")).stdout
    assert "notifiers" in shown and "webhooks" not in shown


async def test_notifiers_add_with_every_option_asks_nothing(server, receiver) -> None:
    """The events are optional (the server has a default): not asked for, even on stdin."""
    url, _ = receiver
    added = await server.cli(
        *("schedule", "notifiers", "add", "--type", "slack", "--url", url, "--name", "alerts"),
        input="task_failed\n",
    )
    assert added.exit_code == 0, added.output
    [row] = await notifiers(server.db)
    assert row.event_types != ["task_failed"]  # the typed line was not read as an answer
    assert "Events" not in added.output


async def test_notifiers_add_off_a_terminal_names_the_missing_options(server) -> None:
    result = await server.cli("schedule", "notifiers", "add", "--type", "slack", input="x\n")
    assert one_line_error(result, code=2) == (
        "ghapp schedule notifiers add: --name and --url are missing: give them "
        "(there is no terminal to ask on)"
    )
    mail = await server.cli("schedule", "notifiers", "add", "--type", "email", "--name", "m")
    assert "--to is missing" in one_line_error(mail, code=2)
    assert await notifiers(server.db) == []


async def test_notifiers_add_asks_on_a_terminal_and_test_reports_failure(server) -> None:
    nowhere = f"{server.base}/healthz"  # answers POST with 405
    answers = ["slack", nowhere, "alerts", "task_failed"]
    code, shown = await in_terminal(server.base, ["schedule", "notifiers", "add"], answers)
    assert code == 0, shown
    [row] = await notifiers(server.db)
    assert (row.name, row.type, row.event_types) == ("alerts", "slack", ["task_failed"])
    line = one_line_error(await server.cli("schedule", "notifiers", "test", str(row.id)))
    assert line.startswith("ghapp schedule notifiers test: not delivered") and "405" in line

    unknown = await server.cli(
        *("schedule", "notifiers", "add", "--type", "slack", "--url", nowhere, "--name", "x"),
        *("--events", "task_exploded"),
    )
    assert "unknown event 'task_exploded' for --events" in one_line_error(unknown, code=2)
    bad = await server.cli(
        *("schedule", "notifiers", "add", "--type", "slack", "--url", "ftp://x", "--name", "x")
    )
    # the option as typed (--url), not the API's field (webhookUrl)
    assert one_line_error(bad).endswith("--url: must be an http:// or https:// URL with a host")
    assert len(await notifiers(server.db)) == 1


async def test_notifiers_add_refuses_an_internal_url(db_url, db, tmp_path) -> None:
    """A server that allows no internal receiver (the default) says which option is wrong."""
    key = Fernet.generate_key().decode()
    settings = make_settings(
        db_url, tmp_path, admin_token=ADMIN, secret_key=key, notify_allow_hosts=""
    )
    async with live_server(create_app(settings, db=db)) as base:
        refused = await ghapp(
            base,
            *("schedule", "notifiers", "add", "--type", "generic", "--name", "x"),
            *("--url", "http://0x7f000001:5432/"),
        )
    assert "--url: the host is an internal address (loopback)" in one_line_error(refused)
    assert await notifiers(db) == []


async def test_notifiers_add_email_asks_for_addresses_on_a_terminal(server) -> None:
    answers = ["email", "ops@example.com, dev@example.org", "mail", "task_failed"]
    code, shown = await in_terminal(server.base, ["schedule", "notifiers", "add"], answers)
    assert code == 0, shown
    assert shown.strip().endswith(  # after the prompts (the answers were typed ahead)
        "added notifier 1 'mail' (email, mailto:2 recipients): task_failed"
    )
    [row] = await notifiers(server.db)
    assert (row.type, row.event_types) == ("email", ["task_failed"])
    bad = await server.cli(
        *("schedule", "notifiers", "add", "--type", "email", "--to", "nope", "--name", "x")
    )
    assert "--to: 'nope' is not an e-mail address" in one_line_error(bad)


# -- editing, manual jobs, duplicates, limits, options anywhere ----------------------------


async def test_edit_changes_only_what_is_given_and_attaches_notifiers(server, receiver) -> None:
    url, _ = receiver
    task = await add_task(
        server, name="Nightly", scheduleType="cron", cronExpression="0 2 * * *", timezone="UTC"
    )
    hooks = [
        (await server.api("POST", "/api/scheduler/webhooks", body))["id"]
        for body in (
            {"name": "a", "webhookType": "slack", "webhookUrl": url},
            {"name": "b", "webhookType": "slack", "webhookUrl": url},
        )
    ]
    renamed = await server.cli("schedule", "edit", str(task["id"]), "--name", "Nightly review")
    assert renamed.exit_code == 0, renamed.output
    job = await server.job(task["id"])
    assert (job.name, job.cron_expression, job.task_type) == (
        "Nightly review",
        "0 2 * * *",
        "analyze",
    )

    attached = await server.cli(
        *("schedule", "edit", str(task["id"]), "--add-notifier", str(hooks[0])),
        *("--add-notifier", str(hooks[1]), "--interval", "30", "--timezone", "Europe/Berlin"),
    )
    assert attached.exit_code == 0, attached.output
    assert attached.stdout.strip().endswith(f"notifiers: {hooks[0]}, {hooks[1]}")
    job = await server.job(task["id"])
    assert (job.notifier_ids, job.interval_minutes, job.cron_expression) == (hooks, 30, None)
    assert (job.timezone, job.name) == ("Europe/Berlin", "Nightly review")  # kept

    removed = await server.cli(
        "schedule", "edit", str(task["id"]), "--remove-notifier", str(hooks[0])
    )
    assert removed.exit_code == 0 and (await server.job(task["id"])).notifier_ids == [hooks[1]]
    cleared = await server.cli("schedule", "edit", str(task["id"]), "--no-notifiers", "--manual")
    assert cleared.exit_code == 0, cleared.output
    job = await server.job(task["id"])
    assert (job.notifier_ids, job.interval_minutes, job.next_run_at) == ([], None, None)
    assert f"manual: runs only when asked (`ghapp schedule run {task['id']}`)" in cleared.stdout

    unknown = await server.cli("schedule", "edit", str(task["id"]), "--add-notifier", "999")
    assert "ghapp schedule edit: --add-notifier: unknown notifier 999" in one_line_error(unknown)
    nothing = await server.cli("schedule", "edit", str(task["id"]))
    assert "nothing to change" in one_line_error(nothing, code=2)
    both = await server.cli("schedule", "edit", str(task["id"]), "--cron", "0 9 * * *", "--manual")
    assert "give one of --cron, --interval, --threshold and --manual, not --cron and --manual" in (
        one_line_error(both, code=2)
    )
    bad = await server.cli("schedule", "edit", str(task["id"]), "--cron", "0 25 * * *")
    assert "--cron: cron expression '0 25 * * *'" in one_line_error(bad)
    assert (await server.job(task["id"])).cron_expression is None  # nothing lost
    entries = json.loads((await server.cli("schedule", "audit", "--json")).stdout)["entries"]
    assert [e["action"] for e in entries if e["objectId"] == str(task["id"])].count(
        "job.update"
    ) == 4


async def test_create_a_manual_job_without_any_cron(server) -> None:
    common = ("--type", "analyze", "--repo", REPO)
    for name, flags in (("Omitted", []), ("Flagged", ["--manual"]), ("Old way", ["--cron", ""])):
        result = await server.cli("schedule", "create", "--name", name, *common, *flags)
        assert result.exit_code == 0, result.output
        assert "manual: runs only when asked" in result.stdout
    jobs = await server.jobs()
    assert [(j.name, j.cron_expression, j.interval_minutes) for j in jobs] == [
        ("Omitted", None, None),
        ("Flagged", None, None),
        ("Old way", None, None),
    ]
    assert {row[3] for row in table_rows((await server.cli("schedule", "list")).stdout)} == {
        "manual"
    }


async def test_quick_refuses_a_duplicate_unless_allowed(server) -> None:
    first = await server.cli("schedule", "quick", "daily-analysis", "--repo", REPO)
    assert first.exit_code == 0, first.output
    [job] = await server.jobs()
    again = one_line_error(await server.cli("schedule", "quick", "daily-analysis", "--repo", REPO))
    assert again == (
        f"ghapp schedule quick: job {job.id} 'Daily Context Analysis' already exists for {REPO}; "
        f"`ghapp schedule edit {job.id}` changes it, --allow-duplicate makes another"
    )
    assert len(await server.jobs()) == 1
    allowed = await server.cli(
        "schedule", "quick", "daily-analysis", "--repo", REPO, "--allow-duplicate"
    )
    assert allowed.exit_code == 0 and len(await server.jobs()) == 2
    other = await server.cli("schedule", "quick", "weekly-optimize", "--repo", REPO)
    assert other.exit_code == 0 and len(await server.jobs()) == 3  # another preset is no duplicate


async def test_upcoming_shows_the_soonest_and_says_how_many_more(server) -> None:
    await add_task(server, name="Quarter hours", scheduleType="cron", cronExpression="*/15 * * * *")
    everything = json.loads((await server.cli("schedule", "upcoming", "--json")).stdout)
    total = len(everything["upcoming"])
    assert total >= 95  # 24 hours of quarter hours
    default = await server.cli("schedule", "upcoming")
    assert len(table_rows(default.stdout)) == 21  # 20 rows and the line after the table
    assert default.stdout.strip().endswith(
        f"… and {total - 20} more in the next 24 hours (--limit to show more)"
    )
    few = await server.cli("schedule", "upcoming", "--limit", "3", "--hours", "2")
    rows = table_rows(few.stdout)
    assert len(rows) == 4 and rows[-1][0].startswith("… and 5 more in the next 2 hours")
    enough = await server.cli("schedule", "upcoming", "--limit", "500")
    assert "more in the next" not in enough.stdout


async def test_server_and_token_options_before_or_after_the_command(server) -> None:
    await add_task(server, name="Found")
    env_only = {"COLUMNS": "240", "GHAPP_URL": None, "GHAPP_TOKEN": None}
    for args in (
        ["schedule", "list", "--url", server.base, "--token", ADMIN],
        ["--url", server.base, "schedule", "list", "--token", ADMIN],
        ["schedule", "--url", server.base, "--token", ADMIN, "list"],
        ["schedule", "--server", server.base, "list", "--token", ADMIN],
        ["schedule", "notifiers", "list", "--server", server.base, "--token", ADMIN],
    ):
        result = await asyncio.to_thread(runner.invoke, cli_app, args, env=env_only)
        assert result.exit_code == 0, (args, result.output)
    listed = await asyncio.to_thread(
        runner.invoke,
        cli_app,
        ["--url", server.base, "schedule", "list", "--token", ADMIN],
        env=env_only,
    )
    assert "Found" in listed.stdout
    # nearest the command wins; the environment still works when no option is given
    nearest = await asyncio.to_thread(
        runner.invoke,
        cli_app,
        [
            *("--url", "http://127.0.0.1:3", "schedule", "--url", "http://127.0.0.1:1"),
            *("list", "--url", server.base),
        ],
        env={"COLUMNS": "240", "GHAPP_URL": "http://127.0.0.1:2", "GHAPP_TOKEN": ADMIN},
    )
    assert nearest.exit_code == 0 and "Found" in nearest.stdout, nearest.output
    assert "Found" in (await server.cli("schedule", "list")).stdout  # GHAPP_URL, GHAPP_TOKEN


async def test_names_from_outside_are_printed_as_text_not_markup(server) -> None:
    await add_task(server, name="[bold red]x[/] [link=http://evil]y")
    listed = await server.cli("schedule", "list")
    assert "[bold red]x[/] [link=http://evil]y" in listed.stdout
    task = (await server.jobs())[0]
    asked = await server.cli("schedule", "edit", str(task.id), "--name", "[red]z[/red]")
    assert "'[red]z[/red]'" in asked.stdout
    refused = one_line_error(
        await server.cli(
            "schedule", "create", "--name", "n", "--type", "analyze", "--repo", "[x]/y"
        )
    )
    assert "[x]/y" in refused


def broken_words(narrow: str, wide: str) -> list[str]:
    """Words of the 80-column output that are not words of the wide one: a word broken
    across lines (``Optimizatio`` / ``n``). A word cut short with an ellipsis is fine."""
    words = set(wide.split())
    broken = []
    for word in narrow.split():
        if word in words or word == "…" or set(word) == {"─"}:  # the rule under the header
            continue
        stem = word.removesuffix("…")
        if word.endswith("…") and any(whole.startswith(stem) for whole in words):
            continue
        broken.append(word)
    return broken


async def test_tables_read_well_at_80_columns(server, receiver) -> None:
    url, _ = receiver
    await server.api(
        "POST",
        "/api/scheduler/webhooks",
        {"name": "Operations channel", "webhookType": "slack", "webhookUrl": url},
    )
    for preset in ("daily-analysis", "weekly-optimize", "threshold-alert"):
        assert (await server.cli("schedule", "quick", preset, "--repo", REPO)).exit_code == 0
    task = await add_task(
        server,
        name="Weekly Optimization of the whole repository",
        scheduleType="cron",
        cronExpression="0 9 * * 1-5",
        timezone="Europe/Berlin",
    )
    run = await server.cli("schedule", "run", str(task["id"]))
    assert run.exit_code == 0, run.output
    for args in (
        ["schedule", "list"],
        ["schedule", "upcoming", "--hours", "200"],
        ["schedule", "history"],
        ["schedule", "status"],
        ["schedule", "audit"],
        ["schedule", "notifiers", "list"],
    ):
        wide = await asyncio.to_thread(
            runner.invoke,
            cli_app,
            args,
            env={"GHAPP_URL": server.base, "GHAPP_TOKEN": ADMIN, "COLUMNS": "400"},
        )
        narrow = await asyncio.to_thread(
            runner.invoke,
            cli_app,
            args,
            env={"GHAPP_URL": server.base, "GHAPP_TOKEN": ADMIN, "COLUMNS": "80"},
        )
        assert narrow.exit_code == 0, narrow.output
        assert max(len(line) for line in narrow.stdout.splitlines()) <= 80, narrow.stdout
        assert broken_words(narrow.stdout, wide.stdout) == [], (args, narrow.stdout)
        assert len(narrow.stdout.split()) > 10  # it printed a table, not an excuse
    listed = (await server.cli("schedule", "list")).stdout
    assert "Optimization" in listed


def test_broken_words_finds_a_word_split_across_lines() -> None:
    wide = "ID  Name\n1   Weekly Optimization\n"
    assert broken_words("ID  Name\n1   Weekly Optimizatio\n    n\n", wide) == ["Optimizatio", "n"]
    assert broken_words("ID  Name\n1   Weekly Optimiz…\n", wide) == []


# -- every job field through create and edit ------------------------------------------------

# JobSpec fields that create and edit do not set, and why. A new JobSpec field must get an
# option (cli/job_options.py) and a case below, or a line here saying which command sets it.
SET_ELSEWHERE = {
    "status": "schedule enable / disable (the API's pause and resume)",
}
OTHER_REPO, OTHER_REPO_ID = "Codertocat/Other", 186853003
FAR_REPO_ID, FAR_INSTALLATION = 186853004, 957388
LABELS_SCHEMA = {
    "type": "object",
    "properties": {"labels": {"type": "array", "items": {"type": "string"}}},
}
BASE_OPTIONS = {"--name": "Job", "--type": "custom", "--prompt": "Review it", "--repo": REPO}
SCOPE_OPTIONS = {"--all-repos", "--repos"}


def threshold_is(metric: str, operator: str, value: float, minutes: int, cooldown: int) -> Any:
    def check(stored: Any) -> bool:
        got = (stored["metric"], stored["operator"], stored["value"])
        schedule = (stored["check_interval_minutes"], stored["cooldown_minutes"])
        return got == (metric, operator, value) and schedule == (minutes, cooldown)

    return check


def triggers_are(*triggers: dict[str, Any]) -> Any:
    from ghapp.jobs.spec import EventTrigger

    full = [EventTrigger(**trigger).model_dump() for trigger in triggers]
    return lambda stored: stored == full


# field: (create options, stored after create, edit options, stored after edit). {first} is
# another job's id, {notifier} a notifier's. A callable checks what is stored.
FIELD_CASES: dict[str, tuple[list[str], Any, list[str], Any]] = {
    "name": (["--name", "Made"], "Made", ["--name", "Renamed"], "Renamed"),
    "description": (["--description", "Nightly"], "Nightly", ["--description", ""], None),
    "task_type": (["--type", "health_check"], "health_check", ["--type", "custom"], "custom"),
    "repo_id": (["--repo", REPO], REPO_ID, ["--repo", OTHER_REPO], OTHER_REPO_ID),
    "installation_id": (
        ["--installation", str(INSTALLATION)],
        INSTALLATION,
        ["--installation", str(FAR_INSTALLATION), "--repos", str(FAR_REPO_ID)],
        FAR_INSTALLATION,
    ),
    "repo_selection": (
        ["--all-repos", "--installation", str(INSTALLATION)],
        "all",
        ["--repos", str(REPO_ID)],
        "list",
    ),
    "repo_ids": (
        ["--repos", str(REPO_ID), "--installation", str(INSTALLATION)],
        [REPO_ID],
        ["--repos", str(OTHER_REPO_ID)],
        [OTHER_REPO_ID],
    ),
    "cron_expression": (
        ["--cron", "0 9 * * *"],
        "0 9 * * *",
        ["--cron", "30 8 * * 1"],
        "30 8 * * 1",
    ),
    "timezone": (
        ["--timezone", "Europe/Berlin"],
        "Europe/Berlin",
        ["--timezone", "Asia/Tokyo"],
        "Asia/Tokyo",
    ),
    "interval_minutes": (["--interval", "30"], 30, ["--interval", "45"], 45),
    "threshold": (
        ["--threshold", "context_score < 60", "--cooldown", "1d"],
        threshold_is("context_score", "lt", 60, 60, 1440),
        ["--threshold", "open_issues >= 10", "--check-every", "30m"],
        threshold_is("open_issues", "gte", 10, 30, 1440),  # the cooldown kept
    ),
    "event_triggers": (
        ["--on", "issues.opened labels=bug"],
        triggers_are({"event": "issues.opened", "labels": ["bug"]}),
        [
            "--no-on",
            "--on",
            "pull_request.opened draft=false branches=main paths=src/** author=member bots=true",
        ],
        triggers_are(
            {
                "event": "pull_request.opened",
                "draft": False,
                "base_branches": ["main"],
                "paths": ["src/**"],
                "author_association": ["MEMBER"],
                "include_bots": True,
            }
        ),
    ),
    "command_triggers": (
        ["--slash-command", "/review"],
        ["/review"],
        ["--slash-command", "/triage"],  # adds to what the job has
        ["/review", "/triage"],
    ),
    "after_job_id": (["--after", "{first}"], "{first}", ["--after", "none"], None),
    "after_only_on_success": (
        ["--after", "{first}", "--after-any"],
        False,
        ["--after-success"],
        True,
    ),
    "mention_trigger": (["--on-mention"], True, ["--no-on-mention"], False),
    "assignment_trigger": (["--on-assign"], True, ["--no-on-assign"], False),
    "follow_ups": (["--no-follow-ups"], False, ["--follow-ups"], True),
    "target_type": (["--target", "codebase"], "codebase", ["--target", "prs"], "prs"),
    "filter_query": (["--filter", "label:bug"], "label:bug", ["--filter", "label:ui"], "label:ui"),
    "command_id": (
        ["--command", "issue/triage"],
        "issue/triage",
        ["--command", "pr/review", "--target", "prs"],
        "pr/review",
    ),
    "custom_prompt": (["--prompt", "Summarise"], "Summarise", ["--prompt", "Again"], "Again"),
    "max_items": (["--max-items", "5"], 5, ["--max-items", "7"], 7),
    "runner": (
        ["--runner", "shell", "--shell", "make lint"],
        "shell",
        ["--runner", "claude"],
        "claude",
    ),
    "shell_command": (
        ["--runner", "shell", "--shell", "make lint"],
        "make lint",
        ["--shell", "make test"],
        "make test",
    ),
    "permission_mode": (
        ["--permission-mode", "plan"],
        "plan",
        ["--permission-mode", "acceptEdits"],
        "acceptEdits",
    ),
    "allowed_tools": (
        ["--allowed-tool", "Read", "--allowed-tool", "Bash(git:*)"],
        ["Read", "Bash(git:*)"],
        ["--no-allowed-tools", "--allowed-tool", "Grep"],
        ["Grep"],
    ),
    "disallowed_tools": (
        ["--disallowed-tool", "WebFetch"],
        ["WebFetch"],
        ["--disallowed-tool", "Write"],
        ["WebFetch", "Write"],
    ),
    "max_turns": (["--max-turns", "7"], 7, ["--max-turns", "none"], None),
    "max_budget_usd": (["--budget", "1.5"], 1.5, ["--budget", "2.25"], 2.25),
    "model": (["--model", "sonnet"], "sonnet", ["--model", ""], None),
    "append_system_prompt": (
        ["--system-prompt-append", "Be brief"],
        "Be brief",
        ["--system-prompt-append", "Be briefer"],
        "Be briefer",
    ),
    "output_schema": (
        ["--output-schema", json.dumps(LABELS_SCHEMA)],
        LABELS_SCHEMA,
        ["--output-schema", ""],
        None,
    ),
    "structured_actions": (
        [
            "--output-schema",
            json.dumps(LABELS_SCHEMA),
            "--structured-actions",
            '{"labels": {"allowed": ["bug"]}}',
        ],
        {"labels": {"allowed": ["bug"]}},
        ["--structured-actions", '{"labels": {"allowed": ["bug", "docs"]}, "dry_run": true}'],
        {"labels": {"allowed": ["bug", "docs"]}, "dry_run": True},
    ),
    "task_config": (
        ["--config", "strategy=moderate", "--config", "dryRun=true"],
        {"strategy": "moderate", "dryRun": True},
        ["--config", "limit=3"],
        {"strategy": "moderate", "dryRun": True, "limit": 3},
    ),
    "report": (["--report", "issue"], "issue", ["--report", "none"], "none"),
    "checks": (["--no-checks"], False, ["--checks"], True),
    "notify_on_success": (["--notify-on", "both"], True, ["--notify-on", "failure"], False),
    "notify_on_failure": (["--notify-on", "success"], False, ["--notify-on", "both"], True),
    "notifier_ids": (
        ["--notifier", "{notifier}"],
        ["{notifier}"],
        ["--no-notifiers"],
        [],
    ),
    "concurrency_policy": (
        ["--concurrency", "queue"],
        "queue",
        ["--concurrency", "cancel"],
        "cancel",
    ),
    "misfire_grace_seconds": (["--misfire-grace", "10m"], 600, ["--misfire-grace", "2h"], 7200),
    "timeout_seconds": (["--timeout", "20m"], 1200, ["--timeout", "1h30m"], 5400),
    "max_retries": (["--retries", "3"], 3, ["--retries", "0"], 0),
}


def filled(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, list):
        return [filled(item, ids) for item in value]
    if isinstance(value, str) and value in ("{first}", "{notifier}"):
        return ids[value.strip("{}")]
    return value


def create_options(options: list[str]) -> list[str]:
    """The case's options, with the base ones it does not give itself."""
    scoped = SCOPE_OPTIONS & set(options)
    base = [
        [option, value]
        for option, value in BASE_OPTIONS.items()
        if option not in options and not (option == "--repo" and scoped)
    ]
    return [*options, *(word for pair in base for word in pair)]


def stored_as(field: str, job: Any, expected: Any) -> None:
    value = getattr(job, field)
    assert expected(value) if callable(expected) else value == expected, (field, value, expected)


def test_every_job_field_has_a_case_or_a_reason() -> None:
    from ghapp.jobs.spec import JobSpec

    assert set(JobSpec.model_fields) == set(FIELD_CASES) | set(SET_ELSEWHERE)
    assert not set(FIELD_CASES) & set(SET_ELSEWHERE)


async def test_create_sets_and_edit_changes_every_job_field(server, receiver) -> None:
    await add_repository(server.db, OTHER_REPO_ID, OTHER_REPO)
    await add_repository(server.db, FAR_REPO_ID, "Octo/Far", FAR_INSTALLATION, "Octo")
    url, _ = receiver
    body = {"name": "n", "webhookType": "slack", "webhookUrl": url}
    ids = {
        "first": (await add_task(server, name="First"))["id"],
        "notifier": (await server.api("POST", "/api/scheduler/webhooks", body))["id"],
    }
    for field, (create, made, change, changed) in FIELD_CASES.items():
        options = create_options(filled(create, ids))
        created = await server.cli("schedule", "create", *options, "--json")
        assert created.exit_code == 0, (field, created.output)
        job_id = json.loads(created.stdout)["id"]
        stored_as(field, await server.job(job_id), filled(made, ids))
        edited = await server.cli("schedule", "edit", str(job_id), *filled(change, ids))
        assert edited.exit_code == 0, (field, edited.output)
        stored_as(field, await server.job(job_id), filled(changed, ids))


async def test_a_bad_job_value_names_the_option_typed(server) -> None:
    task = await add_task(server, name="Kept", timeoutSeconds=600)
    create = ["schedule", "create", *create_options([])]
    edit = ["schedule", "edit", str(task["id"])]
    refusals = {
        # Read by the command line: exit 2, nothing sent.
        (*create, "--timeout", "15x"): (
            2,
            "--timeout: '15x' is not a duration (e.g. 900, 90s, 15m, 1h30m, 2d)",
        ),
        (*create, "--threshold", "context_score <<"): (2, "--threshold: 'context_score <<'"),
        (*create, "--on", "issues.opened colour=red"): (
            2,
            "--on: 'colour=red': unknown condition",
        ),
        (*create, "--budget", "lots"): (2, "--budget: 'lots' is not a number"),
        (*create, "--cooldown", "soon"): (2, "--cooldown: 'soon' is not a duration"),
        ("schedule", "create", *create_options(["--all-repos"])): (
            2,
            "--all-repos needs --installation ID",
        ),
        (*edit, "--repo", REPO, "--repos", "1"): (2, "give one of --repo"),
        (*edit, "--config", "nonsense"): (2, "--config: 'nonsense' is not KEY=VALUE"),
        # Refused by the server: exit 1, its field named as the option.
        (*create, "--max-turns", "5000"): (1, "--max-turns: "),
        (*create, "--threshold", "mood < 3"): (1, "--threshold (metric): unknown metric 'mood'"),
        (*create, "--on", "issues.shipped"): (1, "--on (0.event): "),
        (*create, "--allowed-tool", "rm -rf"): (1, "--allowed-tool: "),
        (*edit, "--timeout", "5"): (1, "--timeout: "),
        (*edit, "--retries", "11"): (1, "--retries: "),
        (*edit, "--slash-command", "review"): (1, "--slash-command: "),
    }
    for args, (code, said) in refusals.items():
        result = await server.cli(*args)
        line = one_line_error(result, code=code)
        assert line.startswith("ghapp schedule ") and said in line, (args, line)
    jobs = await server.jobs()
    assert [(job.name, job.timeout_seconds) for job in jobs] == [("Kept", 600)]  # nothing lost
