"""The dashboard's plumbing: templates, who is signed in, CSRF, errors, redirects.

Every page handler is wrapped by :meth:`Dashboard.page`: it resolves the session cookie to
a :class:`~ghapp.api.auth.Principal` (or redirects to ``/login``), checks the CSRF token on
every POST (``403`` otherwise) and turns refusals into small HTML error pages.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

from jinja2 import PackageLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ghapp.access import Scope
from ghapp.api.errors import ApiError
from ghapp.bodies import MAX_JSON_DEPTH, BodyRefused, nested_deeper_than, read_body
from ghapp.dashboard import describe
from ghapp.dashboard.markdown import render_markdown
from ghapp.dashboard.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    DashboardSession,
    Signer,
    csrf_matches,
    principal_of,
)
from ghapp.jobs.service import JobNotFound
from ghapp.notify.crypto import SecretKeyError
from ghapp.notify.service import NotifierNotFound
from ghapp.runqueue.manage import RunNotFound
from ghapp.tokens import Principal

if TYPE_CHECKING:
    from ghapp.runtime import AppState

log = logging.getLogger("ghapp.dashboard")

STATIC = Path(__file__).parent / "static"
MAX_FORM_BYTES = 1_000_000
MAX_FORM_FIELDS = 2000
# What a page says for anything that does not exist, or that the token may not see.
NOT_FOUND = "Not found: it may have been deleted."
NO_PAGE = "There is no page at this address."
WRONG_METHOD = "This address does not answer a {method} request (a link to an action?)."
SETUP_FIX = (
    "To fix it: run `ghapp setup` where the server runs (it registers the GitHub App and "
    "writes its settings), restart the server, and check `/readyz` says `configured`."
)
# Addresses for programs: their errors stay JSON whatever the client accepts.
MACHINE_PREFIXES = ("/api/", "/webhooks/", "/healthz", "/readyz", "/metrics", "/openapi.json")
MAX_ID = 2**31 - 1  # our ids are INTEGER; larger numbers name nothing
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class PageError(Exception):
    """A refusal shown as an HTML page: 403 out of scope, 404 unknown, 409 not applicable."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Form:
    """A submitted ``application/x-www-form-urlencoded`` form."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    refusal: PageError | None = None  # why the body was not read (the form is then empty)

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.pairs)


@dataclass
class Ctx:
    """What a page handler gets."""

    request: Request
    state: AppState
    principal: Principal
    session: DashboardSession
    dashboard: Dashboard
    form: Form = field(default_factory=Form)

    @property
    def actor(self) -> str:
        return self.principal.actor

    @property
    def now(self) -> datetime:
        return self.state.clock.now()

    def render(self, template: str, code: int = 200, **values: Any) -> HTMLResponse:
        return self.dashboard.render(self.request, template, code, self, **values)

    @property
    def here(self) -> str:
        return here(self.request)

    def int_param(self, name: str) -> int:
        raw = str(self.request.path_params.get(name, ""))
        if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
            raise PageError(404, NOT_FOUND)
        return int(raw)

    async def scope(self) -> Scope:
        return await self.principal.scope(self.state.db)

    async def check_repo(self, repo_id: int | None) -> None:
        """Another tenant's things are not found, exactly like things that do not exist."""
        if not await self.principal.sees(self.state.db, repo_id):
            raise PageError(404, NOT_FOUND)

    def wants_json(self) -> bool:
        return self.request.headers.get("x-requested-with") == "ghapp-dashboard"

    def done(self, message: str, to: str, **extra: Any) -> Response:
        """After an action: JSON for the page's script, a redirect otherwise."""
        signed = with_notice(to, self.dashboard.signer(self.state).dumps({"n": message}))
        if self.wants_json():
            # "then": where the script goes when it leaves the page, saying what was done.
            body = {"ok": True, "message": message, "location": to, "then": signed, **extra}
            return JSONResponse(body)
        return RedirectResponse(signed, status_code=303)


Handler = Callable[[Ctx], Awaitable[Response]]


class Dashboard:
    """Templates and the signing key, built once per app."""

    def __init__(self) -> None:
        self.env = SandboxedEnvironment(
            loader=PackageLoader("ghapp.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.do"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            markdown=render_markdown,
            duration=describe.duration,
            span=describe.span,
            code_spans=describe.code_spans,
            money=describe.money,
            badge=describe.status_class,
            absolute=describe.absolute,
        )
        self.env.globals.update(event_line=describe.event_line)
        # Used only when the server has no secret at all: sessions then end with the process.
        self._fallback_key = secrets.token_bytes(32)

    def signer(self, state: AppState) -> Signer:
        return Signer.for_settings(state.settings, self._fallback_key)

    def secure_cookies(self, state: AppState) -> bool:
        return state.settings.public_url.lower().startswith("https://")

    def render(
        self, request: Request, template: str, code: int, ctx: Ctx | None, **values: Any
    ) -> HTMLResponse:
        now = ctx.now if ctx is not None else None
        notice = ""
        if ctx is not None and request.query_params.get("notice"):
            signed = self.signer(ctx.state).loads(request.query_params["notice"])
            notice = str(signed.get("n", "")) if isinstance(signed, dict) else ""
        page = self.env.get_template(template).render(
            request_path=request.url.path,
            here=here(request),
            principal=ctx.principal if ctx is not None else None,
            csrf=ctx.session.csrf if ctx is not None else values.pop("csrf", ""),
            csrf_field=CSRF_FIELD,
            notice=notice,
            setup_problem=ctx.state.settings.github_app_problem() if ctx is not None else None,
            setup_fix=SETUP_FIX,
            now=now,
            rel=(lambda moment: describe.relative(moment, now)) if now else describe.absolute,
            **values,
        )
        return HTMLResponse(page, status_code=code, headers=SECURITY_HEADERS)

    async def session_of(self, request: Request, state: AppState) -> DashboardSession | None:
        data = self.signer(state).loads(request.cookies.get(SESSION_COOKIE))
        session = DashboardSession.from_dict(data)
        if session is None or session.expires <= int(state.clock.now().timestamp()):
            return None
        return session

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            state: AppState = request.app.state.ghapp
            session = await self.session_of(request, state)
            principal = await principal_of(state, session) if session is not None else None
            if session is None or principal is None:
                return self._to_login(request)
            ctx = Ctx(request, state, principal, session, self)
            if request.method == "POST":
                ctx.form = await read_form(request)
                if ctx.form.refusal is not None:  # it used to escape as a 500
                    refused = self.error(ctx, ctx.form.refusal.status, ctx.form.refusal.message)
                    refused.headers["Connection"] = "close"  # the body may still be coming
                    return refused
                given = request.headers.get(CSRF_HEADER) or ctx.form.get(CSRF_FIELD)
                if not csrf_matches(session.csrf, given):
                    return self.error(
                        ctx,
                        403,
                        "The form has expired or did not come from "
                        "this dashboard (CSRF check failed). Reload and retry.",
                    )
            try:
                return await handler(ctx)
            except PageError as exc:
                return self.error(ctx, exc.status, exc.message)
            except ApiError as exc:
                return self.error(ctx, exc.status, exc.message)
            except (JobNotFound, RunNotFound, NotifierNotFound):
                return self.error(ctx, 404, NOT_FOUND)
            except SecretKeyError as exc:
                return self.error(ctx, 503, str(exc))

        endpoint.__name__ = handler.__name__
        return endpoint

    def error(self, ctx: Ctx, status: int, message: str) -> Response:
        if ctx.wants_json():
            return JSONResponse({"ok": False, "error": message}, status_code=status)
        return ctx.render("error.html", code=status, status_code=status, message=message)

    def _to_login(self, request: Request) -> Response:
        if request.headers.get("x-requested-with") == "ghapp-dashboard":
            return JSONResponse({"ok": False, "error": "signed out", "location": "/login"}, 401)
        target = request.url.path
        if request.url.query and request.method == "GET":
            target += "?" + request.url.query
        location = "/login" if target == "/" else f"/login?next={quote(target, safe='')}"
        return RedirectResponse(location, status_code=303)


def wants_error_page(request: Request) -> bool:
    """A browser asking for a dashboard address: it gets HTML, not ``{"error": ...}``."""
    if request.url.path.startswith(MACHINE_PREFIXES):
        return False
    if request.headers.get("x-requested-with") == "ghapp-dashboard":
        return False  # the page's script reads JSON
    return "text/html" in request.headers.get("accept", "")


async def error_page(request: Request, status: int) -> Response:
    """The dashboard's error page for an address no route answers (or not with this
    method), with the navigation when the browser is signed in."""
    message = WRONG_METHOD.format(method=request.method) if status == 405 else NO_PAGE
    if status not in (404, 405):
        message = f"The request was refused ({status})."
    dashboard = error_dashboard()
    state: AppState = request.app.state.ghapp
    session = await dashboard.session_of(request, state)
    principal = await principal_of(state, session) if session is not None else None
    if session is None or principal is None:
        return dashboard.render(
            request, "error.html", status, None, status_code=status, message=message
        )
    ctx = Ctx(request, state, principal, session, dashboard)
    return ctx.render("error.html", code=status, status_code=status, message=message)


@cache
def error_dashboard() -> Dashboard:
    """Templates for error pages outside any route, built on the first such error."""
    return Dashboard()


async def read_form(request: Request) -> Form:
    """The urlencoded body (a multipart body reads as an empty form).

    A body that is too large, too slow, nested too deeply or cut off by the client reads as
    an empty form carrying its :attr:`Form.refusal`: :meth:`Dashboard.page` answers with
    it, and the sign-in form, having no CSRF token then, refuses it as any other."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return Form()
    timeout_s = request.app.state.ghapp.settings.body_timeout_seconds
    try:
        raw = b"".join(await read_body(request, MAX_FORM_BYTES, timeout_s))
    except BodyRefused as refusal:
        if refusal.client_gone:  # nobody reads the answer; nothing went wrong here
            log.debug("dashboard client went away mid-form", extra={"path": request.url.path})
        message = "The form is too large." if refusal.status == 413 else refusal.reason
        return Form(refusal=PageError(refusal.status, message))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Form()
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # more fields than that: it used to escape as a 500
        return Form(refusal=PageError(400, "The form has too many fields."))
    # Job fields hold JSON (task_config, event_triggers) that json.loads reads recursively.
    if any(nested_deeper_than(value) for _, value in pairs):
        message = f"A field nests brackets deeper than {MAX_JSON_DEPTH} levels."
        return Form(refusal=PageError(400, message))
    return Form(pairs)


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go to after an action (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(char.isspace() or ord(char) < 32 for char in value):  # "/\t/evil.example"
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def with_notice(location: str, message: str) -> str:
    base, _, anchor = location.partition("#")
    parts = urlsplit(base)
    pairs = [(k, v) for k, v in parse_qsl(parts.query) if k != "notice"]
    pairs.append(("notice", message))
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    return f"{parts.path}?{query}" + (f"#{anchor}" if anchor else "")


def here(request: Request) -> str:
    """This page's address without the fragment and notice parameters (to come back to)."""
    pairs = [
        (k, v) for k, v in request.query_params.multi_items() if k not in ("fragment", "notice")
    ]
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    return request.url.path + ("?" + query if query else "")
