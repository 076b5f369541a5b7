"""``/login`` and ``/logout``: an API token in, a signed session cookie out."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ghapp.dashboard.core import Dashboard, read_form, safe_next
from ghapp.dashboard.session import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    LOGIN_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    csrf_matches,
    principal_of,
    sign_in,
    sign_out,
)
from ghapp.throttle import Throttled, client_of

Endpoint = Callable[[Request], Awaitable[Response]]

TOO_MANY = "Too many wrong tokens from your address. Try again in {} seconds."


def login_routes(dashboard: Dashboard) -> tuple[Endpoint, Endpoint, Endpoint]:
    async def login_page(request: Request) -> Response:
        state = request.app.state.ghapp
        next_path = safe_next(request.query_params.get("next"))
        session = await dashboard.session_of(request, state)
        if session is not None and await principal_of(state, session) is not None:
            return RedirectResponse(next_path, status_code=303)
        return _form(request, next_path, error=None, status=200)

    async def login(request: Request) -> Response:
        state = request.app.state.ghapp
        form = await read_form(request)
        next_path = safe_next(form.get("next"))
        expected = dashboard.signer(state).loads(request.cookies.get(LOGIN_COOKIE))
        if not isinstance(expected, str) or not csrf_matches(expected, form.get(CSRF_FIELD)):
            return _form(
                request,
                next_path,
                status=403,
                error="The sign-in form expired or did not come from this server. Try again.",
            )
        client = client_of(request)
        try:
            state.throttle.check(client)
        except Throttled as exc:
            response = _form(request, next_path, status=429, error=TOO_MANY.format(exc.retry_after))
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        session = await sign_in(state, form.get("token"), now=state.clock.now().timestamp())
        if session is None:
            state.throttle.failed(client)
            return _form(request, next_path, status=401, error="Unknown or revoked token.")
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            dashboard.signer(state).dumps(session.to_dict()),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="lax",
            secure=dashboard.secure_cookies(state),
        )
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(request: Request) -> Response:
        state = request.app.state.ghapp
        session = await dashboard.session_of(request, state)
        form = await read_form(request)
        given = request.headers.get("x-csrf-token") or form.get(CSRF_FIELD)
        if session is not None and not csrf_matches(session.csrf, given):
            return Response("CSRF check failed", status_code=403, media_type="text/plain")
        if session is not None:  # a copy of the cookie must not outlive signing out
            await sign_out(state, session)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(
            SESSION_COOKIE,
            path="/",
            httponly=True,
            samesite="lax",
            secure=dashboard.secure_cookies(state),
        )
        return response

    def _form(request: Request, next_path: str, error: str | None, status: int) -> Response:
        state = request.app.state.ghapp
        token = secrets.token_urlsafe(24)
        response = dashboard.render(
            request, "login.html", status, None, csrf=token, next=next_path, error=error
        )
        response.set_cookie(
            LOGIN_COOKIE,
            dashboard.signer(state).dumps(token),
            max_age=LOGIN_SECONDS,
            path="/login",
            httponly=True,
            samesite="lax",
            secure=dashboard.secure_cookies(state),
        )
        return response

    return login_page, login, logout
