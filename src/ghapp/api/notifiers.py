"""Notifiers as the scheduler API's webhooks: ``/api/scheduler/webhooks``; URLs only ever masked."""

from __future__ import annotations

from typing import Any

from ghapp.access import ADMIN_ONLY
from ghapp.api.core import Api, Call
from ghapp.api.errors import ApiError, camel_field, invalid
from ghapp.api.schemas import (
    NotifierIn,
    NotifierOut,
    NotifiersPage,
    NotifiersQuery,
    NotifierUpdate,
    TestResult,
)
from ghapp.db.models import Notifier, saved_id
from ghapp.repo_hint import known_app_url, unknown_repository

api = Api(
    field_names=lambda name: camel_field(name, {"url": "webhook_url", "type": "webhook_type"})
)
WEBHOOKS = "/api/scheduler/webhooks"
ONE_WEBHOOK = WEBHOOKS + "/{webhook_id}"
RENAMED = {"webhook_type": "type", "webhook_url": "url"}


def _spec_changes(body: dict[str, Any]) -> dict[str, Any]:
    out = {RENAMED.get(name, name): value for name, value in body.items() if name != "secret"}
    for name in ("event_types", "recipients"):
        if out.get(name) is None:
            out.pop(name, None)
    return out


async def _visible(call: Call, row: Notifier) -> bool:
    """Non-admin tokens see notifiers limited to repositories all within their scope."""
    return (await call.principal.scope(call.state.db)).sees_all(row.repo_ids or ())


async def _check_scope(call: Call, repo_ids: list[int]) -> None:
    """A tenant's notifiers are limited to its own repositories; one for every repository
    is an admin's. Another tenant's repository is refused as an unknown one."""
    scope = await call.principal.scope(call.state.db)
    if scope.is_admin:
        return
    if not repo_ids:
        raise ApiError(403, ADMIN_ONLY["global_notifier"] + ": only an admin token may add one")
    for repo_id in repo_ids:
        if not scope.sees(repo_id):
            async with call.state.db.read() as conn:
                app_url = await known_app_url(conn)
            raise invalid("repoIds", unknown_repository(repo_id, app_url), "body")


async def _load(call: Call) -> Notifier:
    from ghapp.notify.service import NotifierNotFound

    try:
        row = await call.state.notifiers.get(call.path["webhook_id"])
    except NotifierNotFound:
        raise ApiError(404, "no such notifier") from None
    if not await _visible(call, row):
        raise ApiError(404, "no such notifier")
    return row


def _out(call: Call, row: Notifier) -> NotifierOut:
    view = call.state.notifiers.view(row)
    view["webhook_type"] = view.pop("type")
    view["webhook_url"] = view.pop("url")
    return NotifierOut.model_validate(
        {
            **view,
            "id": row.id,
            "last_used_at": row.last_used_at,
            "failure_count": row.failure_count,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )


@api.route(
    "GET",
    WEBHOOKS,
    summary="List notifiers",
    tag="webhooks",
    query=NotifiersQuery,
    response=NotifiersPage,
)
async def list_webhooks(call: Call) -> Any:
    rows = await call.state.notifiers.list()
    kind = call.query.webhook_type
    shown = [r for r in rows if (kind is None or r.type == kind) and await _visible(call, r)]
    return NotifiersPage(webhooks=[_out(call, row) for row in shown])


@api.route(
    "POST",
    WEBHOOKS,
    summary="Add a notifier",
    tag="webhooks",
    body=NotifierIn,
    response=NotifierOut,
    status=201,
    errors=(400,),
)
async def create_webhook(call: Call) -> Any:
    body = call.body.model_dump(exclude_unset=True)
    await _check_scope(call, body.get("repo_ids") or [])
    row = await call.state.notifiers.create(_spec_changes(body), call.actor, body.get("secret"))
    return _out(call, row)


@api.route(
    "GET",
    ONE_WEBHOOK,
    summary="Get a notifier",
    tag="webhooks",
    response=NotifierOut,
    errors=(404,),
)
async def get_webhook(call: Call) -> Any:
    return _out(call, await _load(call))


@api.route(
    "PATCH",
    ONE_WEBHOOK,
    summary="Change a notifier (enable, URL, events…)",
    tag="webhooks",
    body=NotifierUpdate,
    response=NotifierOut,
    errors=(400, 404),
)
async def update_webhook(call: Call) -> Any:
    row = await _load(call)
    body = call.body.model_dump(exclude_unset=True)
    if "repo_ids" in body:
        await _check_scope(call, body["repo_ids"] or [])
    secret = body.get("secret")
    row = await call.state.notifiers.update(saved_id(row), _spec_changes(body), call.actor, secret)
    return _out(call, row)


@api.route(
    "DELETE", ONE_WEBHOOK, summary="Delete a notifier", tag="webhooks", status=204, errors=(404,)
)
async def delete_webhook(call: Call) -> None:
    row = await _load(call)
    await call.state.notifiers.delete(saved_id(row), call.actor)


@api.route(
    "POST",
    ONE_WEBHOOK + "/test",
    summary="Send a test message; report the answer",
    tag="webhooks",
    response=TestResult,
    errors=(404,),
)
async def test_webhook(call: Call) -> Any:
    """The status and a standard reason for everyone; the receiver's words for admins only.

    A tenant's receiver is of its own choosing, and its body could be anything a server
    reachable from ghapp says: echoing it would make ghapp a way to read such servers. An
    admin already decides where ghapp may send (GHAPP_NOTIFY_ALLOW_HOSTS), and an excerpt
    of the answer (Slack's ``invalid_payload``, say) is what fixes a misconfigured notifier.
    """
    row = await _load(call)
    attempt = await call.state.notifiers.test_now(saved_id(row), call.actor, call.state.settings)
    return TestResult(
        ok=attempt.ok,
        status_code=attempt.status_code,
        response=attempt.response if call.principal.is_admin else None,
        error=attempt.error,
        duration_ms=attempt.duration_ms,
    )
