"""``GET /dashboard/cron?expr=&tz=``: a cron expression in words and its next five runs.

The job form asks this as the expression is typed; the same function fills the preview
when the form is rendered on the server (without JavaScript, after a refused save).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from ghapp.dashboard.core import Ctx
from ghapp.scheduler.timing import InvalidSchedule, cron_schedule, describe_cron, parse_timezone

NEXT_COUNT = 5


def cron_preview(expression: str, timezone: str, now: datetime) -> dict[str, Any]:
    """``{"description", "next": [ISO times in the zone], "display": [...], "error"}``."""
    expression = (expression or "").strip()
    timezone = (timezone or "").strip() or "UTC"
    out: dict[str, Any] = {"description": None, "next": [], "display": [], "error": None}
    if not expression:
        return out
    if len(expression) > 200:
        out["error"] = "the expression is too long"
        return out
    try:
        zone = parse_timezone(timezone)
        out["description"] = describe_cron(expression)
        schedule = cron_schedule(expression, timezone)
        moment = now
        for _ in range(NEXT_COUNT):
            moment = schedule.next_after(moment)
            local = moment.astimezone(zone)
            out["next"].append(local.isoformat())
            out["display"].append(
                local.strftime("%a %Y-%m-%d %H:%M ")
                + (local.tzname() or timezone)
                + ("" if timezone == "UTC" else moment.strftime(" (%H:%M UTC)"))
            )
    except InvalidSchedule as exc:
        out.update(description=None, next=[], display=[], error=str(exc))
    return out


async def cron_endpoint(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    preview = cron_preview(params.get("expr", ""), params.get("tz", "UTC"), ctx.now)
    return JSONResponse(preview, headers={"Cache-Control": "no-store"})
