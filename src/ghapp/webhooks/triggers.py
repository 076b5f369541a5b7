"""Event, slash-command, mention and assignment triggers: the runs a delivery queues, in
its own transaction.

The item of such a run is the event's issue or PR (the normalised :class:`ItemEvent`).
For a command or a mention (``@<app-slug>``, :func:`_mention`) the run records who asked
and with what arguments (a mention's request: what followed it); whether that person may
run it (write or admin permission) is checked by the worker, which has the GitHub API. A
comment with a slash command is a command, not also a mention.

An issue assigned to the app's bot user runs the jobs with ``assignment_trigger`` (the
worker checks that the one who assigned it may write). Unassigning the bot cancels that
issue's assignment runs, queued and running, whoever did it: it only stops work (and only
triage or more may unassign on GitHub); the run's error says who.

A new push to a pull request (``pull_request.synchronize``) supersedes the older runs of
each job it triggers on that pull request, as the job's concurrency policy says:
``cancel`` and ``skip`` (the default) cancel queued and running ones (skipping the new
head's run would leave it without its check run); ``queue`` cancels queued ones and lets a
running one finish; ``allow`` keeps them all.
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio

from ghapp.db.batch import Statement
from ghapp.db.models import TriggerType
from ghapp.runqueue import sql
from ghapp.runqueue.new import NewRun, enqueue_statements
from ghapp.triggers.index import IndexedJob, assigns_app
from ghapp.webhooks import followups
from ghapp.webhooks.context import DeliveryContext
from ghapp.webhooks.normalize import ITEM_EVENTS, ItemEvent

router = routing.Router()
UNASSIGNED = "unassigned by @{login}"  # why its runs stopped (checks.CANCEL_REASONS)


async def queue_matching_runs(event: sansio.Event, ctx: DeliveryContext) -> None:
    item = ctx.item
    if item is None or ctx.jobs is None:
        return
    for job, trigger in ctx.jobs.event_matches(item):
        detail: dict[str, Any] = {"event": f"{item.event}.{item.action}", "actor": item.actor_login}
        if trigger.paths:
            detail["paths"] = trigger.paths  # the worker checks the PR's files
        if item.event == "pull_request" and item.action == "synchronize":
            _supersede(ctx, job, item)  # before the new run is queued: it is not touched
        _queue(ctx, job.id, TriggerType.event, detail)
    _assignment(ctx, item)
    commands = ctx.jobs.command_matches(item)
    if not commands and await _follow_up(ctx, item):
        return  # addressed to an earlier session: not also a mention run
    for match in commands:
        detail = {
            "command": match.command,
            "args": match.args,
            "requested_by": item.actor_login,
            "author_association": item.author_association,
            "comment_id": item.comment_id,
        }
        _queue(ctx, match.job.id, TriggerType.command, detail)
    if not commands:  # "/fix @app": the command is what was asked for
        _queue_mentions(ctx, item)


async def _follow_up(ctx: DeliveryContext, item: ItemEvent) -> bool:
    """Queue the follow-up this comment is (``ghapp.webhooks.followups``), if it is one.
    A slash command in it is a command instead: that is what the person asked for."""
    assert ctx.jobs is not None
    found = await followups.find_follow_up(ctx.jobs.db, item, _mention(ctx, item))
    if found is None:
        return False
    _queue(ctx, found.job_id, TriggerType.follow_up, found.detail)
    return True


def _mention(ctx: DeliveryContext, item: ItemEvent) -> str | None:
    """The text after ``@<app-slug>`` in the comment, None when the app is not mentioned."""
    assert ctx.jobs is not None
    return ctx.jobs.mention(item)


def _queue_mentions(ctx: DeliveryContext, item: ItemEvent) -> None:
    """A person's comment mentioning the app runs each job that opted in to mentions."""
    assert ctx.jobs is not None
    request = _mention(ctx, item)
    if request is None:
        return
    slug = ctx.jobs.app_slug
    for job in ctx.jobs.mention_jobs(item):
        detail = {
            "command": f"@{slug}",  # what a refusal quotes
            "request": request,
            "requested_by": item.actor_login,
            "author_association": item.author_association,
            "comment_id": item.comment_id,
        }
        _queue(ctx, job.id, TriggerType.mention, detail)


def _assignment(ctx: DeliveryContext, item: ItemEvent) -> None:
    """``issues.assigned`` to the app's bot user runs the assignment jobs;
    ``issues.unassigned`` of it cancels the issue's assignment runs."""
    assert ctx.jobs is not None
    for job in ctx.jobs.assignment_jobs(item):
        detail = {"event": "issues.assigned", "requested_by": item.actor_login}
        _queue(ctx, job.id, TriggerType.assignment, detail)
    if assigns_app(item, "unassigned", ctx.jobs.app_slug):
        params = {
            "repo_id": item.repo_id,
            "number": item.number,
            "now": ctx.received_at,
            "reason": UNASSIGNED.format(login=item.actor_login),
        }
        ctx.add(Statement(sql.UNASSIGN_QUEUED, params))
        ctx.add(Statement(sql.UNASSIGN_RUNNING, params))
        ctx.cancels_requested = True


def _supersede(ctx: DeliveryContext, job: IndexedJob, item: ItemEvent) -> None:
    """The job's older runs on this pull request, as its concurrency policy says."""
    if job.concurrency_policy == "allow":
        return
    head = item.pull.head_sha[:7] if item.pull is not None else ""
    params = {
        "job_id": job.id,
        "repo_id": item.repo_id,
        "number": item.number,
        "now": ctx.received_at,
        "reason": f"superseded by a newer push ({head})" if head else "superseded by a newer push",
    }
    ctx.add(Statement(sql.SUPERSEDE_QUEUED, params))
    if job.concurrency_policy != "queue":
        ctx.add(Statement(sql.SUPERSEDE_RUNNING, params))
        ctx.cancels_requested = True


def _queue(
    ctx: DeliveryContext, job_id: int, trigger_type: TriggerType, detail: dict[str, Any]
) -> None:
    item = ctx.item
    assert item is not None
    run = NewRun(
        job_id=job_id,
        repo_id=item.repo_id,
        installation_id=ctx.installation_id,
        trigger_type=trigger_type,
        now=ctx.received_at,
        trigger_detail=detail,
        item=item.to_dict(),
        delivery_id=item.delivery_id,
    )
    for statement in enqueue_statements(run):
        ctx.add(statement)
    ctx.runs_queued += 1


for _event in sorted(ITEM_EVENTS):
    router.add(queue_matching_runs, _event)
