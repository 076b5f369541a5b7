"""Event and slash-command triggers: the runs a delivery queues, in its own transaction.

The item of such a run is the event's issue or PR (the normalised :class:`ItemEvent`).
For a command the run records who asked and with what arguments; whether that person may
run it (write or admin permission) is checked by the worker, which has the GitHub API.
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio

from ghapp.db.batch import Statement, json_text
from ghapp.db.models import TriggerType
from ghapp.webhooks.context import DeliveryContext
from ghapp.webhooks.normalize import ITEM_EVENTS

router = routing.Router()

INSERT_RUN = (
    "INSERT INTO runs (job_id, repo_id, installation_id, trigger_type, trigger_detail, "
    "delivery_id, item, status, items_found, items_processed, items_skipped, items_failed, "
    "attempt, cost_usd, run_after, queued_at) VALUES (:job_id, :repo_id, "
    "COALESCE(:installation_id, (SELECT installation_id FROM repositories WHERE id = :repo_id)), "
    ":trigger_type, :trigger_detail, :delivery_id, :item, 'queued', 0, 0, 0, 0, 1, 0, :now, :now)"
)
COUNT_RUN = "UPDATE jobs SET run_count = run_count + 1 WHERE id = :job_id"


async def queue_matching_runs(event: sansio.Event, ctx: DeliveryContext) -> None:
    item = ctx.item
    if item is None or ctx.jobs is None:
        return
    for job, trigger in ctx.jobs.event_matches(item):
        detail: dict[str, Any] = {"event": f"{item.event}.{item.action}", "actor": item.actor_login}
        if trigger.paths:
            detail["paths"] = trigger.paths  # the worker checks the PR's files
        _queue(ctx, job.id, TriggerType.event, detail)
    for match in ctx.jobs.command_matches(item):
        detail = {
            "command": match.command,
            "args": match.args,
            "requested_by": item.actor_login,
            "author_association": item.author_association,
            "comment_id": item.comment_id,
        }
        _queue(ctx, match.job.id, TriggerType.command, detail)


def _queue(
    ctx: DeliveryContext, job_id: int, trigger_type: TriggerType, detail: dict[str, Any]
) -> None:
    item = ctx.item
    assert item is not None
    ctx.add(
        Statement(
            INSERT_RUN,
            {
                "job_id": job_id,
                "repo_id": item.repo_id,
                "installation_id": ctx.installation_id,
                "trigger_type": trigger_type.value,
                "trigger_detail": json_text(detail),
                "delivery_id": item.delivery_id,
                "item": json_text(item.to_dict()),
                "now": ctx.received_at,
            },
        )
    )
    ctx.add(Statement(COUNT_RUN, {"job_id": job_id}))
    ctx.runs_queued += 1


for _event in sorted(ITEM_EVENTS):
    router.add(queue_matching_runs, _event)
