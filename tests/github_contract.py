"""A suite-wide check: the GitHub stand-in as GitHub documents itself.

At the start of the run every GitHub stand-in, in this process and in the subprocesses it
starts (``ghapp demo``, servers under test), is set up to hold each request and answer to
GitHub's own OpenAPI description (``@octokit/openapi``, pinned in ``npm/claude-code``;
:mod:`ghapp.standins.github.contract`), through environment variables. A stand-in appends
each violation to one file; after each test, the violations that appeared during it fail
that test, listed. A test that breaks the contract on purpose takes its violations back
with ``GitHubStandIn.take_violations()`` (and asserts on them).

At the end, ``test-artifacts/github-operations.txt`` lists every GitHub operation the run
used (``operationId METHOD /path/template``) and the summary counts them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from ghapp.standins.github import server

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "npm" / "claude-code" / "node_modules" / "@octokit" / "openapi" / "generated"
DOTCOM = GENERATED / "api.github.com.json"
GHES = GENERATED / "ghes-3.17.json"
OPERATIONS = ROOT / "test-artifacts" / "github-operations.txt"


class GitHubContract:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.violations = workdir / "violations.jsonl"
        self.operations = workdir / "operations.txt"
        self.violations.touch()
        self.operations.touch()
        self.offset = 0  # how much of the violations file earlier tests accounted for
        self.stray: list[tuple[str, dict[str, Any]]] = []  # made between tests: (when, one)
        self.workers_used: set[str] = set()  # operations pytest-xdist workers reported

    def environment(self) -> dict[str, str]:
        return {
            server.CONTRACT: str(DOTCOM),
            server.CONTRACT_GHES: str(GHES),
            server.VIOLATIONS_FILE: str(self.violations),
            server.OPERATIONS_FILE: str(self.operations),
        }

    def new_violations(self) -> list[dict[str, Any]]:
        """The violations appended since the last call, less those taken back."""
        with self.violations.open("rb") as lines:
            lines.seek(self.offset)
            data = lines.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self.offset += len(complete)
        records = [json.loads(line) for line in complete.splitlines() if line.strip()]
        withdrawn = {r["withdrawn"] for r in records if "withdrawn" in r}
        return [r for r in records if "withdrawn" not in r and r["key"] not in withdrawn]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # A server an earlier test left running: not this test's, but not nobody's either.
        self.stray.extend((f"before {item.nodeid}", v) for v in self.new_violations())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        found = self.new_violations()
        if not found or report.skipped:
            return
        listing = "\n".join(_describe(v) for v in found[:30])
        more = f"\n… and {len(found) - 30} more" if len(found) > 30 else ""
        text = (
            "GitHub's API description (@octokit/openapi) was broken "
            f"{len(found)} time(s) during {call.when}:\n{listing}{more}"
        )
        if report.failed:  # already failing: the departures may say why
            report.sections.append(("GitHub's API description", text))
            return
        report.outcome = "failed"
        report.longrepr = text

    def operations_used(self) -> list[str]:
        mine = set(self.operations.read_text().splitlines())
        return sorted((mine | self.workers_used) - {""})

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A pytest-xdist worker ended: take over what it found and used."""
        found = getattr(node, "workeroutput", {}).get("github_contract", {})
        self.stray.extend((when, violation) for when, violation in found.get("stray", []))
        self.workers_used.update(found.get("used", []))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.stray.extend(("after the last test", v) for v in self.new_violations())
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # a pytest-xdist worker: the controller sums up
            workeroutput["github_contract"] = {
                "stray": self.stray,
                "used": self.operations_used(),
            }
            return
        if self.stray:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        used = self.operations_used()
        if used:
            OPERATIONS.parent.mkdir(exist_ok=True)
            OPERATIONS.write_text("".join(f"{line}\n" for line in used))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.stray:
            terminalreporter.section("GitHub's API description, broken between tests", red=True)
            for when, violation in self.stray[:50]:
                terminalreporter.write_line(f"{when}:{_describe(violation)}")
        used = self.operations_used()
        terminalreporter.write_line(
            f"ghapp used {len(set(line.split()[0] for line in used))} distinct GitHub "
            f"operations (listed in {OPERATIONS.relative_to(ROOT)})"
        )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def _describe(violation: dict[str, Any]) -> str:
    operation = f" ({violation['operation']})" if violation["operation"] else ""
    return (
        f"  {violation['side']} {violation['method']} {violation['path']}{operation}"
        f" -> {violation['status']}: {violation['problem']}"
    )


def pytest_configure(config: pytest.Config) -> None:
    missing = [path for path in (DOTCOM, GHES) if not path.exists()]
    if missing:
        raise pytest.UsageError(
            f"GitHub's API description is missing ({', '.join(map(str, missing))}): "
            "run `npm ci` in npm/claude-code (CI does); the GitHub stand-in is checked "
            "against it"
        )
    checker = GitHubContract(Path(tempfile.mkdtemp(prefix="ghapp-contract-")))
    os.environ.update(checker.environment())
    config.pluginmanager.register(checker, "github-contract")
