"""Re-runs asked for on GitHub: ``check_run.rerequested`` and ``check_suite.rerequested``.

A pull request's sessions show as check runs (:mod:`ghapp.worker.checks`); their
``external_id`` names the run (``ghapp/run/12/session/34``). Someone pressing *Re-run* on
one queues that run again as a retry, on the same head; *Re-run all checks* of a suite
queues again each job's latest run that has a check run on the suite's head (ghapp's own
records: sessions keep their check run and head). Refused, without a word: check runs
another app made (the payload's app id is not ours), and repositories the delivery's
installation does not cover (or no longer does). Like every handler, no GitHub call: the
delivery's statements decide, in its transaction.
"""

from __future__ import annotations

import re
from typing import Any

from gidgethub import routing, sansio

from ghapp.db.batch import Statement, json_text
from ghapp.runqueue import sql
from ghapp.runqueue.new import COLUMNS
from ghapp.webhooks import fields
from ghapp.webhooks.context import DeliveryContext

router = routing.Router()

EXTERNAL_ID = re.compile(r"^ghapp/run/(\d{1,18})(?:/session/\d{1,18})?$")
_RERUN_ONE = sql.rerun(COLUMNS, sql.RERUN_ONE)
_RERUN_SUITE = sql.rerun(COLUMNS, sql.RERUN_SUITE)


def external_id(run_id: int, session_id: int | None = None) -> str:
    """What a check run made for a run (and its session) carries as ``external_id``."""
    return f"ghapp/run/{run_id}" + (f"/session/{session_id}" if session_id else "")


def run_of(value: Any) -> int | None:
    """The run an ``external_id`` names, or None when it is not one of ours."""
    match = EXTERNAL_ID.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


@router.register("check_run", action="rerequested")
async def check_run_rerequested(event: sansio.Event, ctx: DeliveryContext) -> None:
    check = fields.obj(event.data, "check_run")
    run_id = run_of(check.get("external_id"))
    if run_id is None or not _ours(check, ctx):
        return
    _rerun(event, ctx, _RERUN_ONE, {"run_id": run_id}, check.get("pull_requests"))


@router.register("check_suite", action="rerequested")
async def check_suite_rerequested(event: sansio.Event, ctx: DeliveryContext) -> None:
    suite = fields.obj(event.data, "check_suite")
    if not _ours(suite, ctx):
        return
    head_sha = fields.text(suite, "head_sha", limit=64)
    _rerun(event, ctx, _RERUN_SUITE, {"head_sha": head_sha}, suite.get("pull_requests"))


def _ours(check: dict[str, Any], ctx: DeliveryContext) -> bool:
    """Made by this app, and delivered for an installation (whose repositories it covers)."""
    app = check.get("app")
    app_id = app.get("id") if isinstance(app, dict) else None
    return ctx.app_id is not None and app_id == ctx.app_id and ctx.installation_id is not None


def _rerun(
    event: sansio.Event,
    ctx: DeliveryContext,
    insert: str,
    which: dict[str, Any],
    pulls: Any,
) -> None:
    repo = fields.obj(event.data, "repository")
    pull = _pull_item(pulls)
    params = {
        **which,
        "repo_id": fields.int_id(repo),
        "installation_id": ctx.installation_id,
        "delivery_id": event.delivery_id,
        "now": ctx.received_at,
        "item": None if pull is None else json_text(pull),
    }
    ctx.add(Statement(insert, params))
    ctx.add(Statement(sql.COUNT_RERUNS, {"delivery_id": event.delivery_id}))
    ctx.runs_queued += 1


def _pull_item(pulls: Any) -> dict[str, Any] | None:
    """The pull request a re-run was asked on, as a run's item, for runs that searched for
    their pull requests (an event's run keeps its own item). GitHub lists none for a
    fork's pull request: such a run searches again."""
    if not isinstance(pulls, list) or not pulls or not isinstance(pulls[0], dict):
        return None
    pull = pulls[0]
    head, base = pull.get("head") or {}, pull.get("base") or {}
    return {
        "item_kind": "pr",
        "number": fields.int_id(pull, "number"),
        "title": "",
        "pull": {
            "head_sha": str(head.get("sha") or ""),
            "head_ref": str(head.get("ref") or ""),
            "base_ref": str(base.get("ref") or ""),
        },
    }
