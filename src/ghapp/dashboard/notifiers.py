"""``/notifiers``: list, add, edit, test, enable/disable and delete notifiers.

URLs and addresses are only ever shown masked (:meth:`NotifierService.view`); a saved URL
or signing secret is kept when its field is left empty on the edit form. A token limited
to some repositories sees and manages only notifiers limited to its repositories, as in
the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import col
from starlette.responses import RedirectResponse, Response

from ghapp.dashboard.core import NOT_FOUND, Ctx, PageError, safe_next
from ghapp.dashboard.forms import named_field
from ghapp.db.models import Notification, Notifier, Repository, saved_id
from ghapp.notify.spec import DEFAULT_EVENTS, EVENTS
from ghapp.reads import scoped

TYPES = (
    ("slack", "Slack"),
    ("discord", "Discord"),
    ("n8n", "n8n"),
    ("generic", "Generic webhook"),
    ("email", "E-mail"),
)
FIELDS = (
    "name",
    "description",
    "type",
    "url",
    "recipients",
    "secret",
    "event_types",
    "repo_ids",
    "enabled",
)
# What the notifier form calls each field (its error summary uses these words).
LABELS = {
    "name": "Name",
    "description": "Description",
    "type": "Type",
    "url": "Webhook URL",
    "recipients": "E-mail addresses",
    "secret": "Signing secret",
    "event_types": "Events",
    "repo_ids": "Repositories",
    "enabled": "Enabled",
}
RESPONSE_SHOWN = 500
ERROR_SHOWN = 300
# A message's status as the notifier list says it (pending with an attempt: a retry is due).
DELIVERY_STATES = {"sent": "delivered", "failed": "failed", "pending": "failed, retrying"}


async def notifier_list(ctx: Ctx) -> Response:
    rows = await _visible_rows(ctx)
    last = await last_deliveries(ctx, rows)
    views = [{**_view(ctx, row), "last": last.get(saved_id(row))} for row in rows]
    result = None
    signed = ctx.request.query_params.get("result")
    if signed:
        result = ctx.dashboard.signer(ctx.state).loads(signed)
        if not isinstance(result, dict):
            result = None
    return ctx.render("notifiers.html", notifiers=views, result=result)


async def new_notifier(ctx: Ctx) -> Response:
    values = {
        "name": "",
        "description": "",
        "type": "generic",
        "url": "",
        "recipients": "",
        "secret": "",
        "event_types": list(DEFAULT_EVENTS),
        "repo_ids": [],
        "enabled": True,
    }
    return await _form(ctx, values, {}, row=None)


async def create_notifier(ctx: Ctx) -> Response:
    values = _values(ctx)
    data, errors = _data(values, existing=None)
    await _check_scope(ctx, data["repo_ids"], errors)
    if not errors:
        try:
            row = await ctx.state.notifiers.create(data, ctx.actor, values["secret"] or None)
        except ValidationError as exc:
            errors = _errors(exc)
        else:
            return ctx.done(f"Added the notifier “{row.name}”.", f"/notifiers#notifier-{row.id}")
    return await _form(ctx, values, errors, row=None, status=422)


async def edit_notifier(ctx: Ctx) -> Response:
    row = await _load(ctx)
    view = ctx.state.notifiers.view(row)
    values = {
        "name": row.name,
        "description": row.description or "",
        "type": row.type,
        "url": "",
        "recipients": "",
        "secret": "",
        "event_types": list(row.event_types),
        "repo_ids": [str(repo_id) for repo_id in row.repo_ids],
        "enabled": row.enabled,
    }
    return await _form(ctx, values, {}, row=row, view=view)


async def update_notifier(ctx: Ctx) -> Response:
    row = await _load(ctx)
    values = _values(ctx)
    data, errors = _data(values, existing=row)
    await _check_scope(ctx, data["repo_ids"], errors)
    if not errors:
        secret = "" if ctx.form.has("remove_secret") else (values["secret"] or None)
        try:
            row = await ctx.state.notifiers.update(saved_id(row), data, ctx.actor, secret)
        except ValidationError as exc:
            errors = _errors(exc)
        else:
            return ctx.done(f"Saved the notifier “{row.name}”.", f"/notifiers#notifier-{row.id}")
    return await _form(ctx, values, errors, row=row, view=ctx.state.notifiers.view(row), status=422)


async def test_notifier(ctx: Ctx) -> Response:
    row = await _load(ctx)
    attempt = await ctx.state.notifiers.test_now(saved_id(row), ctx.actor, ctx.state.settings)
    result = {
        "id": row.id,
        "name": row.name,
        "ok": attempt.ok,
        "status_code": attempt.status_code,
        # Only admins see what the receiver said (see ghapp.api.notifiers.test_webhook).
        "response": (attempt.response or "")[:RESPONSE_SHOWN] if ctx.principal.is_admin else "",
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }
    signed = ctx.dashboard.signer(ctx.state).dumps(result)
    location = f"/notifiers?result={signed}#notifier-{row.id}"
    if ctx.wants_json():
        return ctx.done("Test sent." if attempt.ok else "Test failed.", location, result=result)
    return RedirectResponse(location, status_code=303)


async def enable_notifier(ctx: Ctx) -> Response:
    row = await _load(ctx)
    await ctx.state.notifiers.update(saved_id(row), {"enabled": True}, ctx.actor)
    return ctx.done(f"Enabled “{row.name}”.", safe_next(ctx.form.get("next"), "/notifiers"))


async def disable_notifier(ctx: Ctx) -> Response:
    row = await _load(ctx)
    await ctx.state.notifiers.update(saved_id(row), {"enabled": False}, ctx.actor)
    return ctx.done(f"Disabled “{row.name}”.", safe_next(ctx.form.get("next"), "/notifiers"))


async def confirm_delete_notifier(ctx: Ctx) -> Response:
    row = await _load(ctx)
    return ctx.render("delete_notifier.html", notifier=_view(ctx, row))


async def delete_notifier(ctx: Ctx) -> Response:
    row = await _load(ctx)
    await ctx.state.notifiers.delete(saved_id(row), ctx.actor)
    return ctx.done(f"Deleted the notifier “{row.name}”.", "/notifiers")


# -- helpers ------------------------------------------------------------------------------------


async def _visible_rows(ctx: Ctx) -> list[Notifier]:
    rows = await ctx.state.notifiers.list()
    if ctx.principal.is_admin:
        return rows
    allowed = await ctx.principal.repo_ids(ctx.state.db)
    return [row for row in rows if row.repo_ids and set(row.repo_ids) <= allowed]


async def _load(ctx: Ctx) -> Notifier:
    row = await ctx.state.notifiers.get(ctx.int_param("notifier_id"))
    if not (await ctx.scope()).sees_all(row.repo_ids or ()):
        raise PageError(404, NOT_FOUND)
    return row


async def _check_scope(ctx: Ctx, repo_ids: list[int], errors: dict[str, str]) -> None:
    """A limited token's notifiers are limited to its repositories (as in the API)."""
    if ctx.principal.is_admin:
        return
    if not repo_ids:
        errors.setdefault("repo_ids", "choose at least one of your token's repositories")
    elif not set(repo_ids) <= await ctx.principal.repo_ids(ctx.state.db):
        errors.setdefault("repo_ids", "choose only your token's repositories")


def _view(ctx: Ctx, row: Notifier) -> dict[str, Any]:
    view = ctx.state.notifiers.view(row)
    return {
        **view,
        "id": row.id,
        "failure_count": row.failure_count,
        "last_used_at": row.last_used_at,
        "created_at": row.created_at,
    }


async def last_deliveries(ctx: Ctx, rows: list[Notifier]) -> dict[int, dict[str, Any]]:
    """Each notifier's latest attempted message (test sends included): ok or not, when, the
    HTTP status and the error, with the notifier's own address masked out of the error."""
    ids = [saved_id(row) for row in rows]
    if not ids:
        return {}
    latest = (
        select(func.max(col(Notification.id)))
        .where(col(Notification.notifier_id).in_(ids), col(Notification.attempts) > 0)
        .group_by(col(Notification.notifier_id))
    )
    query = select(
        col(Notification.notifier_id),
        col(Notification.status),
        col(Notification.http_status),
        col(Notification.error),
        col(Notification.event),
        col(Notification.attempt_log),
        col(Notification.sent_at),
        col(Notification.created_at),
    ).where(col(Notification.id).in_(latest))
    async with ctx.state.db.read() as conn:
        found = list(await conn.execute(query))
    by_id = {saved_id(row): row for row in rows}
    return {item.notifier_id: _delivery(ctx, by_id[item.notifier_id], item) for item in found}


def _delivery(ctx: Ctx, row: Notifier, item: Any) -> dict[str, Any]:
    log = item.attempt_log or []
    at = log[-1].get("at") if log else None
    return {
        "ok": item.status == "sent",
        "state": DELIVERY_STATES.get(item.status, item.status),
        "test": item.event == "test",
        "at": _when(at) or item.sent_at or item.created_at,
        "http_status": item.http_status,
        "error": _masked_error(ctx, row, item.error),
    }


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _masked_error(ctx: Ctx, row: Notifier, error: str | None) -> str | None:
    """An error may quote the address it was sent to (a network library's message): the
    address's secret part (a Slack path, a token in the query) is never shown."""
    if not error:
        return None
    target = ctx.state.notifiers.target_of(row)
    view = ctx.state.notifiers.view(row)
    if target.get("url"):
        error = error.replace(target["url"], view["url"])
    for address, masked in zip(target.get("recipients", []), view["recipients"], strict=False):
        error = error.replace(address, masked)
    return error[:ERROR_SHOWN]


def _values(ctx: Ctx) -> dict[str, Any]:
    form = ctx.form
    return {
        "name": form.get("name"),
        "description": form.get("description"),
        "type": form.get("type"),
        "url": form.get("url"),
        "recipients": form.get("recipients"),
        "secret": form.get("secret"),
        "event_types": form.all("event_types"),
        "repo_ids": form.all("repo_ids"),
        "enabled": form.has("enabled"),
    }


def _data(
    values: dict[str, Any], existing: Notifier | None
) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    data: dict[str, Any] = {
        "name": values["name"].strip(),
        "description": values["description"].strip() or None,
        "type": values["type"],
        "event_types": values["event_types"],
        "enabled": values["enabled"],
    }
    repo_ids = []
    for text in values["repo_ids"]:
        if text.isdigit() and int(text) < 2**63:
            repo_ids.append(int(text))
        else:
            errors["repo_ids"] = f"{text!r} is not a repository id"
    data["repo_ids"] = repo_ids
    url = values["url"].strip()
    recipients = [
        a.strip() for a in values["recipients"].replace(",", "\n").splitlines() if a.strip()
    ]
    changed_kind = existing is not None and existing.type != data["type"]
    if data["type"] == "email":
        if recipients or existing is None or changed_kind:
            data["recipients"] = recipients
            if existing is not None:
                data["url"] = None
    elif url or existing is None or changed_kind:
        data["url"] = url or None
        if existing is not None:
            data["recipients"] = []
    return data, errors


def _errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        location = str(error["loc"][0]) if error["loc"] else ""
        reason = error["msg"].removeprefix("Value error, ")
        name = location if location in FIELDS else (_notifier_field(reason) or "form")
        out.setdefault(name, reason)
    return out


def _notifier_field(reason: str) -> str | None:
    if "url" in reason:
        return "url"
    if "recipients" in reason or "address" in reason:
        return "recipients"
    return named_field(reason)


async def _form(
    ctx: Ctx,
    values: dict[str, Any],
    errors: dict[str, str],
    row: Notifier | None,
    view: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    query = await scoped(
        select(col(Repository.id), col(Repository.full_name)),
        col(Repository.id),
        ctx.principal,
        ctx.state.db,
    )
    async with ctx.state.db.read() as conn:
        repos = list(await conn.execute(query.order_by(col(Repository.full_name))))
    return ctx.render(
        "notifier_form.html",
        code=status,
        row=row,
        view=view,
        values=values,
        errors=errors,
        repos=repos,
        types=TYPES,
        events=EVENTS,
        labels=LABELS,
    )
