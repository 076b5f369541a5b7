"""The ``shell`` runner: a command line from the job, in the checkout.

The exit code decides; the tail of the output is the result. Like the claude runner it
runs in its own process group, killed as a whole on timeout or cancellation, with an
environment that holds none of ghapp's secrets. (Only admins and config files may create
shell jobs — checked when the job is saved, in the API issue.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ghapp.runners.base import Outcome, SessionRequest, refused
from ghapp.runners.claude import _kill_group, confinement, sandbox_refusal, session_environment

if TYPE_CHECKING:
    from ghapp.settings import Settings

OUTPUT_TAIL_LINES = 200


Wrap = Callable[[list[str]], list[str]]  # puts a command line inside the sandbox


class ShellRunner:
    """The job's command line, in the sandbox, for as long as the job's time limit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def run(self, request: SessionRequest) -> Outcome:
        refusal = sandbox_refusal(request.sandbox)
        if refusal is not None:
            return refusal
        if request.job.shell_command is None:  # a shell job is saved only with one
            return refused("the job has no shell_command")
        wrap, env = confinement(request, self.settings.session_env_names)
        return await run_shell(
            request.job.shell_command,
            request.checkout,
            time_limit=request.job.timeout_seconds,
            cancel=request.cancel,
            env=env,
            wrap=wrap,
        )


async def run_shell(
    command: str,
    cwd: Path,
    *,
    time_limit: float,
    cancel: asyncio.Event | None = None,
    env: Mapping[str, str] | None = None,
    wrap: Wrap | None = None,
) -> Outcome:
    started = time.monotonic()
    argv = ["/bin/sh", "-c", command]
    process = await asyncio.create_subprocess_exec(
        *(wrap(argv) if wrap is not None else argv),
        cwd=cwd,
        env=dict(env) if env is not None else session_environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            tail.append(raw.decode("utf-8", "replace").rstrip())

    reading = asyncio.ensure_future(read())
    stop = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
    waiters = {reading} | ({stop} if stop else set())
    done, _ = await asyncio.wait(waiters, timeout=time_limit, return_when=asyncio.FIRST_COMPLETED)
    if stop is not None:
        stop.cancel()
    status = "completed"
    if reading not in done:
        _kill_group(process)
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        status = "cancelled" if stop in done else "timed_out"
    exit_code = await process.wait()
    output = "\n".join(tail)
    ms = int((time.monotonic() - started) * 1000)
    if status != "completed" or exit_code != 0:
        reason = {"cancelled": "cancelled", "timed_out": f"timed out after {time_limit:g} s"}.get(
            status, f"exited with code {exit_code}"
        )
        error = f"{reason}\n{output}".strip()
        return Outcome(
            False,
            "failed" if status == "completed" else status,
            output,
            error,
            None,
            0,
            0.0,
            ms,
            exit_code,
        )
    return Outcome(True, "completed", f"```\n{output}\n```", None, None, 0, 0.0, ms, exit_code)
