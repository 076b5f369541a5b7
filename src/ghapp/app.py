"""The web app: ``create_app(settings)`` wires the routes to a :class:`~ghapp.runtime.Runtime`."""

from __future__ import annotations

import gc
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ghapp.api import api_routes
from ghapp.clock import Clock
from ghapp.dashboard import dashboard_routes
from ghapp.dashboard.core import error_page, wants_error_page
from ghapp.db import Database
from ghapp.db.core import upsert_row
from ghapp.db.errors import describe
from ghapp.db.models import SchedulerState, table_of
from ghapp.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ghapp.runtime import AppState, Role, Runtime
from ghapp.settings import Settings
from ghapp.tokens import hash_token
from ghapp.webhooks.ingress import github_webhook

log = logging.getLogger("ghapp")

READY_PROBE = "ready_probe"  # the scheduler_state row /readyz writes
STOP_STEP_S = 5.0  # the longest any one shutdown step may take after the sessions' grace


async def metrics(request: Request) -> Response:
    """Prometheus text format: this process's counters and the database's gauges.

    With ``GHAPP_METRICS_TOKEN`` set, only a scraper sending it as a bearer token is answered:
    the figures name installations and show what runs where."""
    state: AppState = request.app.state.ghapp
    if not metrics_allowed(state.settings, request.headers.get("authorization", "")):
        return Response(
            "GET /metrics needs Authorization: Bearer <GHAPP_METRICS_TOKEN>\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="ghapp metrics"'},
        )
    try:
        await state.metrics.refresh(state.db, state.clock.now())
    except Exception as exc:  # the process's own counters still say what it did
        log.warning("metrics: database gauges not read", extra={"error": describe(exc)})
    return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)


def metrics_allowed(settings: Settings, authorization: str) -> bool:
    if settings.metrics_token is None:
        return True
    scheme, _, given = authorization.partition(" ")
    expected = settings.metrics_token.get_secret_value()
    # Digests first: compare_digest on the raw strings would leak the token's length.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        hash_token(given.strip()), hash_token(expected)
    )


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database takes a write, and (in a process with workers) a worker slot
    can claim runs. A full disk or a read-only database file answers reads but loses work,
    so only a real write counts.

    It also says whether runs can reach GitHub: a server without the app's credentials
    still takes deliveries, but every run it starts fails, and whoever looks here should be
    told why."""
    state: AppState = request.app.state.ghapp
    github_app = state.settings.github_app_problem() or "configured"
    try:
        await probe_write(state.db, state.clock.now())
    except Exception as exc:  # any failure means "not ready", never a stack trace
        reason = f"database: {describe(exc)}"
        log.warning("readiness check failed", extra={"error": reason})
        return JSONResponse(
            {"status": "unavailable", "reason": reason, "github_app": github_app}, 503
        )
    problem = state.pool_health.problem() if state.pool_health is not None else None
    if problem is not None:
        return JSONResponse(
            {"status": "unavailable", "reason": problem, "github_app": github_app}, 503
        )
    return JSONResponse({"status": "ok", "database": state.db.dialect, "github_app": github_app})


async def probe_write(db: Database, now: datetime) -> None:
    """One small write, committed: the database can take work now."""
    async with db.write() as conn:
        await upsert_row(
            conn,
            table_of(SchedulerState),
            {"key": READY_PROBE, "value": now.isoformat(), "updated_at": now},
            key=("key",),
        )


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback; the client gets one line, never the trace."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error (logged on the server)"}, status_code=500)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if wants_error_page(request):  # a browser on a dashboard address: a page, not JSON
        page = await error_page(request, exc.status_code)
        page.headers.update(exc.headers or {})  # Allow, on a 405
        return page
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    run_scheduler: bool = False,
    workers: int = 0,
) -> Starlette:
    """Build a ghapp web app. The database must already be migrated.

    ``run_scheduler`` starts the scheduler loop with the app and ``workers`` a worker pool
    of that many slots (``ghapp serve`` does both; ``--no-worker`` leaves them out).
    """
    roles = [Role.web]
    if run_scheduler:
        roles.append(Role.scheduler)
    if workers:
        roles.append(Role.worker)
    runtime = Runtime.build(settings, roles, db=db, clock=clock, concurrency=workers)
    if not settings.webhook_secrets:
        log.warning("no webhook secret configured: every delivery will be refused")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        # Everything built so far lives as long as the process: move it out of the garbage
        # collector's sight. A full collection walking it cost ~60 ms at the p99 of the API.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await runtime.stop()

    routes = [
        Route("/webhooks/github", github_webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *api_routes(),
        *dashboard_routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.ghapp = runtime.state
    app.state.runtime = runtime
    return app
