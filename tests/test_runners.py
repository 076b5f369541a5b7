"""The runners behind one protocol: the worker's registry by name, one request in, one
outcome out, and a job naming a runner ghapp does not have fails its run, saying so."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ghapp.db.models import Job, Run, RunStatus
from ghapp.runners import build_runners
from ghapp.runners.base import Outcome, Progress, SessionRequest
from ghapp.runners.shell import ShellRunner
from ghapp.sandbox import Sandbox
from ghapp.worker.execute import SessionExecutor
from ghapp.worker.pool import RunContext
from ghapp.worker.rows import JobRow, RunRow
from ghapp.worker.trust import Policy

READ_ONLY = Policy((), (), ("Read",), None, project_settings=True, writes=False)
NO_SANDBOX = Sandbox("off", None)


class Log:
    """A session log that keeps what it is told."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.flushed = 0

    async def named(self, agent_session_id: str) -> None:
        self.names.append(agent_session_id)

    async def progress(self, progress: Progress, event: dict[str, Any]) -> None:
        pass

    async def flush(self) -> None:
        self.flushed += 1


def settings(**values: Any) -> Any:
    base = {
        "github_app_problem": lambda: None,
        "public_url": "http://ghapp.test",
        "session_env_names": (),
        "claude_bin": "claude",
        "max_budget_usd": None,
        "sandbox": "off",
    }
    return SimpleNamespace(**{**base, **values})


def job(**values: Any) -> Job:
    return Job(id=1, name="Tidy", **values)


def request(checkout: Path, job_row: Job, sandbox: Sandbox = NO_SANDBOX) -> SessionRequest:
    return SessionRequest(
        checkout=checkout,
        prompt="",
        job=JobRow.of(job_row),
        policy=READ_ONLY,
        command=None,
        sandbox=sandbox,
        cancel=asyncio.Event(),
        log=Log(),
    )


def test_the_registry_has_one_runner_per_name_a_job_may_give() -> None:
    runners = build_runners(settings())
    assert set(runners) == {"claude", "shell", "builtin"}
    assert all(callable(getattr(runner, "run", None)) for runner in runners.values())


async def test_a_shell_session_runs_the_job_s_command_in_the_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "work"
    checkout.mkdir()
    (checkout / "README").write_text("hello\n")
    shell = job(runner="shell", shell_command="cat README", timeout_seconds=30)
    outcome = await ShellRunner(settings()).run(request(checkout, shell))
    assert isinstance(outcome, Outcome)
    assert (outcome.ok, outcome.status, outcome.exit_code) == (True, "completed", 0)
    assert "hello" in (outcome.result_text or "")


async def test_a_required_sandbox_that_cannot_run_refuses_claude_and_shell(tmp_path: Path) -> None:
    broken = Sandbox("required", None, "bubblewrap is not installed")
    runners = build_runners(settings())
    for name in ("claude", "shell"):
        wanted = job(runner=name, shell_command="true", timeout_seconds=30)
        outcome = await runners[name].run(request(tmp_path, wanted, broken))
        assert (outcome.ok, outcome.status) == (False, "failed")
        assert outcome.error == "GHAPP_SANDBOX=required, and bubblewrap is not installed"


async def test_a_job_naming_an_unknown_runner_fails_its_run_before_github_is_asked() -> None:
    github = SimpleNamespace()  # any use of GitHub would raise AttributeError
    executor = SessionExecutor(None, settings(), github, None, sandbox=NO_SANDBOX)
    run = Run(id=7, job_id=1, repo_id=42, trigger_type="manual")
    result = await executor.execute(RunContext(run=run, job=job(runner="docker")))
    assert result.status == RunStatus.failed
    assert result.error == "runner 'docker' is not one of builtin, claude, shell"
    assert not result.retryable


def test_rows_take_the_columns_the_worker_reads() -> None:
    run = RunRow.of(Run(id=7, job_id=1, trigger_type="command", trigger_detail={"args": "x"}))
    assert (run.id, run.repo_id, run.arguments) == (7, None, "x")
    row = JobRow.of(job(allowed_tools=["Read", "Bash"]))
    assert row.allowed_tools == ("Read", "Bash")  # a tuple: the row cannot be changed
