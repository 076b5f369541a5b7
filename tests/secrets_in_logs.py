"""A suite-wide check: no log line carries a secret the tests know.

Every record logged anywhere in the run is formatted as ghapp formats it in production (the
JSON lines of :mod:`ghapp.logs`, ``extra`` fields and tracebacks included) and kept; after
each test its lines are scanned for every secret registered so far, and the run fails at
its end (exit status 1, the offending lines printed with the secrets masked) if any line
carried one. Shared test support registers what it makes: ``make_settings`` the settings'
secrets, the API helpers their tokens, the notifier helpers their URLs. Some secrets have a
shape that gives them away wherever they come from — API tokens, GitHub tokens, Slack and
Discord webhook URLs — and those are caught without being registered.

ghapp's loggers are set to DEBUG and httpx's to INFO before each test, so a line that would
carry a secret at any level ghapp can be run at is written, and seen. httpx's lines (one per
request, the test clients' too) are kept out of the logs pytest shows for a failed test:
this check reads them, people need not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import pytest

from ghapp.logs import JSONFormatter

MIN_LENGTH = 8  # shorter values would match innocent text
MASK = "[SECRET]"
SHAPES = (
    re.compile(r"ghapp_[A-Za-z0-9_-]{43}"),  # ghapp API tokens
    re.compile(r"gh[pousr]_[A-Za-z0-9]{36}"),  # GitHub tokens
    re.compile(r"hooks\.slack\.com/services/[^\s\"'*]+"),
    re.compile(r"discord(?:app)?\.com/api/webhooks/[^\s\"'*]+"),
)
LEVELS = {"ghapp": logging.DEBUG}
UNSHOWN = {"httpx": logging.INFO}  # captured here, not passed on to pytest's handlers

_secrets: set[str] = set()


def register(*values: str | None) -> None:
    """Secrets no log line may carry. A multi-line value (a PEM key) counts line by line."""
    for value in values:
        if not value:
            continue
        lines = value.strip().splitlines()
        parts = [value] if len(lines) == 1 else [ln for ln in lines if not ln.startswith("-")]
        _secrets.update(part.strip() for part in parts if len(part.strip()) >= MIN_LENGTH)


def leaks(lines: list[str], secrets: Iterable[str] | None = None) -> list[str]:
    """The lines carrying a secret, each with every secret in it masked."""
    # One search per secret through all the lines at once: thousands of secrets are
    # registered by the end of a run, and a test may log thousands of lines.
    text = "\n".join(lines)
    known = list(_secrets if secrets is None else secrets)
    present = sorted((secret for secret in known if secret in text), key=len, reverse=True)
    shapes = [shape for shape in SHAPES if shape.search(text)]
    found = []
    for line in lines if present or shapes else []:
        masked = line
        for secret in present:
            masked = masked.replace(secret, MASK)
        for shape in shapes:
            masked = shape.sub(MASK, masked)
        if masked != line:
            found.append(masked)
    return found


class Capture(logging.Handler):
    """Every record, formatted as production formats it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JSONFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is the logger's bug, not ours
            self.handleError(record)

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


class SecretsInLogs:
    def __init__(self) -> None:
        self.capture = Capture()
        self.found: list[tuple[str, str]] = []

    def attach(self) -> None:
        # Again before every test: ghapp.logs.configure, run by some tests, replaces the
        # root logger's handlers and sets the libraries' levels as production has them.
        for logger in (logging.getLogger(), *map(logging.getLogger, UNSHOWN)):
            if self.capture not in logger.handlers:
                logger.addHandler(self.capture)
        for name, level in {**LEVELS, **UNSHOWN}.items():
            logging.getLogger(name).setLevel(level)
        for name in UNSHOWN:
            logging.getLogger(name).propagate = False

    def scan(self, where: str) -> None:
        self.found.extend((where, line) for line in leaks(self.capture.take()))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.scan("between tests")
        self.attach()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.scan(nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.scan("after the last test")
        for logger in (logging.getLogger(), *map(logging.getLogger, UNSHOWN)):
            logger.removeHandler(self.capture)
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # a pytest-xdist worker: the controller sums up
            workeroutput["secrets_in_logs"] = self.found
            return
        if self.found:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: object, error: object) -> None:
        """A pytest-xdist worker ended: take over the lines it found."""
        found = getattr(node, "workeroutput", {}).get("secrets_in_logs", [])
        self.found.extend((where, line) for where, line in found)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.found:
            return
        terminalreporter.section("secrets in logs", red=True)
        for where, line in self.found[:50]:
            terminalreporter.write_line(f"{where}: {line[:500]}")
        terminalreporter.write_line(f"{len(self.found)} log line(s) carried a secret")


def pytest_configure(config: pytest.Config) -> None:
    checker = SecretsInLogs()
    checker.attach()
    config.pluginmanager.register(checker, "secrets-in-logs")
