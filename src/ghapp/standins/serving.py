"""Serving a stand-in with uvicorn on loopback: in the running loop, or in a thread.

Tests that await talk to a stand-in served in their own loop; the demo and tests that run
ghapp as a subprocess need it served from a thread with a loop of its own. Both wait for
uvicorn's ``started`` flag (polling a flag, not waiting for time to pass) and stop cleanly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from starlette.types import ASGIApp


def loopback_config(app: ASGIApp) -> uvicorn.Config:
    """A stand-in's server: a free loopback port, quiet, no lifespan, a short stop."""
    return uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        loop="asyncio",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )


@asynccontextmanager
async def in_loop(server: uvicorn.Server, name: str) -> AsyncIterator[uvicorn.Server]:
    """``server`` served in the running loop while the block runs."""
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what went wrong
            raise RuntimeError(f"the {name} stopped before starting")
        await asyncio.sleep(0.005)  # polling a flag uvicorn sets
    try:
        yield server
    finally:
        server.should_exit = True
        await task


@contextmanager
def in_thread(
    server: uvicorn.Server, name: str, startup_timeout: float = 10.0
) -> Iterator[uvicorn.Server]:
    """``server`` served from a background thread with its own loop while the block runs."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name=name.replace(" ", "-"), daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if failure:
            raise RuntimeError(f"the {name} failed to start") from failure[0]
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the {name} did not start")
        time.sleep(0.005)  # polling a flag uvicorn sets, bounded by the deadline
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
