"""Structured actions on a pull request from a stranger's fork (the end-to-end world of
tests.test_attacks): the session only reads, its result's labels from the allow-list are
applied to the pull request, and a pull request is never closed as a duplicate."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ghapp.db.models import Session
from ghapp.standins.model import ModelRequest, Turn
from ghapp.worker import actions
from tests.test_attacks import REPO, REPO_ID, fork_pr_opened, world

__all__ = ["world"]  # the end-to-end world of tests.test_attacks, reused as it is

TOOL = "StructuredOutput"
SCHEMA = {
    "type": "object",
    "properties": {
        "labels": {"type": "array", "items": {"type": "string"}},
        "duplicate_of": {"type": ["integer", "null"]},
    },
    "required": ["labels", "duplicate_of"],
}


def answering(obj: dict[str, Any]):
    def model(request: ModelRequest) -> Turn:
        if TOOL in request.tools and not request.tool_results:
            return Turn.tool(TOOL, obj)
        return Turn.text("Labelled.")

    return model


async def test_a_fork_s_pull_request_is_labelled_but_never_closed_as_a_duplicate(world) -> None:
    world.github.add_label(REPO, "needs-review")
    world.github.add_label(REPO, "merge-now")
    world.github.add_issue(REPO, 9, title="An older pull request's issue")
    world.model.set_default(answering({"labels": ["needs-review", "merge-now"], "duplicate_of": 9}))
    await world.state.jobs.create(
        {
            "name": "Label PRs",
            "repo_id": REPO_ID,
            "target_type": "prs",
            "custom_prompt": "Label this pull request.",
            "event_triggers": [{"event": "pull_request.opened"}],
            "output_schema": SCHEMA,
            "structured_actions": {"labels": {"allowed": ["needs-review"]}, "duplicate": True},
        },
        actor="t",
    )
    [run] = await world.run("pull_request", fork_pr_opened())
    assert run.status == "completed", run.error
    pull = world.github.issue(REPO, 2)
    assert [label["name"] for label in pull["labels"]] == ["needs-review"]
    assert pull["state"] == "open"
    async with world.state.db.read() as conn:
        session = (await conn.execute(select(Session))).one()
    assert session.structured_actions == [
        {
            "action": "label",
            "value": "merge-now",
            "status": "refused",
            "reason": actions.NOT_ALLOWED_LABEL,
        },
        {"action": "label", "value": "needs-review", "status": "done", "reason": None},
        {"action": "duplicate", "value": "#9", "status": "refused", "reason": actions.ONLY_ISSUES},
    ]
