"""What the browser tests share: Debian's Chromium (or a skip), a ghapp server served by
uvicorn on its own event loop in a background thread, signing in, and screenshots.

Screenshots land in ``test-artifacts/screenshots/`` (git-ignored)."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
WIDE = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def require_chromium() -> None:
    """Skip the module without Chromium; in CI, fail: CI installs it (.ci/run)."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(
            f"{CHROMIUM} is missing: CI installs Debian's chromium package (.ci/run)", pytrace=False
        )
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)


async def start_uvicorn(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Serve ``app`` on a free loopback port: the server, its task and its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="on", loop="asyncio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("a server stopped before starting")
        await asyncio.sleep(0.005)  # polling uvicorn's flag, not a timing assumption
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


@contextmanager
def in_thread(
    serve: Callable[[threading.Event, list[uvicorn.Server]], Awaitable[None]],
) -> Iterator[None]:
    """Run ``serve`` on its own event loop in a thread until the block ends.

    ``serve`` sets the event once it is ready and lists the uvicorn servers to stop."""
    ready = threading.Event()
    servers: list[uvicorn.Server] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(serve(ready, servers))
        except BaseException as exc:  # reported by the caller's thread
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=run, name="browser-test-server", daemon=True)
    thread.start()
    assert ready.wait(90), "the server did not start"
    if failure:
        raise failure[0]
    try:
        yield
    finally:
        for server in servers:
            server.should_exit = True
        thread.join(30)


def sign_in(page: Any, token: str) -> None:
    """Through the sign-in form, as a person does; lands on the overview."""
    from playwright.sync_api import expect

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0: nothing scrolls sideways)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def shots(page: Any, name: str) -> dict[int, int]:
    """``<name>-1366.png`` and ``<name>-390.png``; the sideways overflow at each width.

    The page is left at the wide size."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = {}
    for size in (WIDE, PHONE):
        page.set_viewport_size(size)
        out[size["width"]] = overflow(page)
        shot(page, f"{name}-{size['width']}")
    page.set_viewport_size(WIDE)
    return out
