"""``ghapp schedule …``: runs (history, retry, cancel) and the scheduler (status, start, stop,
upcoming, audit). The API calls runs "executions"; what people read says "runs"."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghapp.cli.connection import api, api_command, command_name
from ghapp.cli.describe import progress, show_executions, show_upcoming
from ghapp.cli.groups import Json, schedule_app
from ghapp.cli.output import dump_json, err, fail
from ghapp.cli.tables import Col, plural, say, show_table, when, when_utc

if TYPE_CHECKING:
    from ghapp.cli.client import ApiClient

EXECUTIONS = "/api/scheduler/executions"
FINISHED = frozenset({"completed", "failed", "skipped", "cancelled", "timed_out"})
SERVER_FAILED = 1  # as ghapp.cli.client's, without importing httpx for it
NOTHING_UPCOMING = "nothing fires in the next {hours:g} hours"
MORE_UPCOMING = "… and {more} more in the next {hours:g} hours (--limit to show more)"
NO_AUDIT = "no audit entries"

RunId = Annotated[int, typer.Argument(metavar="RUN_ID", help="Run id.")]


@api_command(schedule_app)
def history(
    ctx: typer.Context,
    task: Annotated[
        int | None, typer.Option("--task", "--job", metavar="ID", help="Only this job's runs.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", metavar="STATUS", help="e.g. failed")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, max=200)] = 20,
    json_: Json = False,
) -> None:
    """Past and current runs, newest first."""
    with api(ctx) as client:
        page = client.get(EXECUTIONS, params={"taskId": task, "status": status, "limit": limit})
    if json_:
        dump_json(page)
        return
    show_executions(page["executions"])


@api_command(schedule_app)
def retry(ctx: typer.Context, execution_id: RunId) -> None:
    """Run again what a finished run did."""
    with api(ctx) as client:
        started = client.post(f"{EXECUTIONS}/{execution_id}/retry")
    say(f"run {started['executionId']} queued (retry of {execution_id})")


@api_command(schedule_app)
def cancel(
    ctx: typer.Context,
    execution_id: RunId,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            min=0,
            help="Seconds to wait for a running one to end (0: don't).",
        ),
    ] = 90.0,
    poll: Annotated[
        float, typer.Option("--poll", metavar="SECONDS", min=0.05, help="Seconds between looks.")
    ] = 1.0,
) -> None:
    """Cancel a queued or running run, and wait until it has ended.

    A queued run ends at once. A running one stops within moments when its worker is
    alive, or once its lease lapses (a minute by default) when its worker is gone.
    """
    with api(ctx) as client:
        result = client.post(f"{EXECUTIONS}/{execution_id}/cancel", {})
        final = result
        if result["status"] not in FINISHED and wait > 0:
            say(f"run {execution_id} asked to stop; waiting for it to end")
            final = follow(client, execution_id, poll, within=wait)
    if final["status"] not in FINISHED:
        fail(
            command_name(ctx),
            f"run {execution_id} is still {final['status']} after {wait:g} s; "
            "it is ended when its worker stops it or its lease lapses",
            code=SERVER_FAILED,
        )
    say(f"run {execution_id} {final['status']}")


def follow(
    client: ApiClient, execution_id: int, poll: float, within: float | None = None
) -> dict[str, Any]:
    """Look at the run every ``poll`` seconds until it has ended (or ``within`` seconds have
    passed: then the last look is returned, unfinished)."""
    give_up = None if within is None else time.monotonic() + within
    with status_line() as show:
        while True:
            execution: dict[str, Any] = client.get(f"{EXECUTIONS}/{execution_id}")
            show(progress(execution))
            if execution["status"] in FINISHED:
                return execution
            if give_up is not None and time.monotonic() >= give_up:
                return execution
            time.sleep(poll)


@contextmanager
def status_line() -> Iterator[Callable[[str], None]]:
    """A Rich status line on a terminal; elsewhere a line on stderr whenever it changes."""
    if err.is_terminal:
        with err.status("") as status:
            yield lambda text: status.update(text)
        return
    shown: list[str] = []

    def show(text: str) -> None:
        if not shown or shown[-1] != text:
            shown.append(text)
            err.print(text, markup=False, highlight=False)

    yield show


# -- the scheduler --------------------------------------------------------------------------------


@api_command(schedule_app)
def status(ctx: typer.Context, json_: Json = False) -> None:
    """Is the scheduler firing; counts of jobs and runs; what runs next."""
    with api(ctx) as client:
        state = client.get("/api/scheduler/status")
    if json_:
        dump_json(state)
        return
    today = state["today"]
    say(f"scheduler {state['state']}, next wake {when_utc(state.get('nextWakeAt'))}")
    say(f"jobs: {state['activeTasks']} active, {state['pausedTasks']} paused")
    say(f"runs: {state['queuedExecutions']} queued, {state['runningExecutions']} running")
    say(
        f"today: {plural(today['runs'], 'run')}, {today['successful']} successful, "
        f"{today['failed']} failed, ${today['costUsd']:.2f}"
    )
    show_upcoming(state.get("nextRuns") or [], "Next runs", "nothing scheduled")


@api_command(schedule_app)
def start(ctx: typer.Context) -> None:
    """Start firing schedules (on every replica)."""
    with api(ctx) as client:
        say(f"scheduler {client.post('/api/scheduler/start')['state']}")


@api_command(schedule_app)
def stop(ctx: typer.Context) -> None:
    """Stop firing schedules (on every replica); runs can still be started by hand."""
    with api(ctx) as client:
        say(f"scheduler {client.post('/api/scheduler/stop')['state']}")


@api_command(schedule_app)
def upcoming(
    ctx: typer.Context,
    hours: Annotated[
        float, typer.Option("--hours", metavar="H", min=0.01, max=744, help="How far ahead.")
    ] = 24,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", min=1, help="Show at most N (the soonest).")
    ] = 20,
    json_: Json = False,
) -> None:
    """What fires in the next hours, soonest first (--json: all of it)."""
    with api(ctx) as client:
        page = client.get("/api/scheduler/upcoming", params={"hours": hours})
    if json_:
        dump_json(page)
        return
    entries = page["upcoming"]
    show_upcoming(entries[:limit], "Upcoming", NOTHING_UPCOMING.format(hours=hours))
    if len(entries) > limit:
        say(MORE_UPCOMING.format(more=len(entries) - limit, hours=hours))


@api_command(schedule_app)
def audit(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, max=500)] = 20,
    json_: Json = False,
) -> None:
    """Who changed or ran what, newest first."""
    with api(ctx) as client:
        page = client.get("/api/scheduler/audit", params={"limit": limit})
    if json_:
        dump_json(page)
        return
    show_table(
        "Audit",
        (
            Col("ID", key=True),
            Col("When", key=True),
            Col("Actor", min_width=10),
            Col("Action", key=True),
            Col("Object", min_width=8),
        ),
        (
            (
                a["id"],
                when(a["createdAt"]),
                a["actor"],
                a["action"],
                f"{a['objectType']} {a.get('objectId') or ''}".strip(),
            )
            for a in page["entries"]
        ),
        NO_AUDIT,
    )
