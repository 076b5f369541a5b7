"""Shared fixtures: a fresh migrated database per test on SQLite and on PostgreSQL.

PostgreSQL comes from ``GHAPP_TEST_DATABASE_URL`` (required when ``CI=true``): each test
gets its own database, cloned from a template migrated once per session, and dropped
afterwards. Without the variable (and outside CI) the PostgreSQL variants are skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from ghapp.app import create_app
from ghapp.db import Database
from ghapp.db.migrate import MIGRATIONS, upgrade
from ghapp.settings import Settings
from tests.support import SECRET

pytest_plugins = [
    "tests.claude_cli",  # the real Claude Code CLI and the model stand-in
    "tests.github_support",  # github, clock, app: the GitHub client against the stand-in
    "tests.end_to_end_support",  # world: the app, a worker pool, GitHub and the model
    "tests.config_support",  # config_world: .github/ghapp.yml synced from the stand-in
    "tests.secrets_in_logs",  # fails the run if a log line carries a secret
    "tests.github_contract",  # fails a test that breaks GitHub's API description
    "pytester",  # runs a small suite to show that check works
]

# pytest-xdist starts its workers with COLUMNS=80 and LINES=24; Rich fixes a console's size
# from them when the console is made (ghapp's CLI makes its two at import), so every table
# a test reads would wrap at 80 columns whatever COLUMNS the test then asks for.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)

# The files that take longest, started first: pytest-xdist hands out whole files in the
# order collected, so a long file begun last keeps one worker busy while the other idles.
# Only the order changes; a file missing here still runs, in its place.
LONGEST_FIRST = (
    "test_end_to_end.py",
    "test_faults.py",
    "test_doctor.py",
    "test_demo.py",
    "test_scale_out.py",
    "test_cli_schedule.py",
    "test_checks.py",
    "test_logs.py",
    "test_follow_ups.py",
    "test_structured_actions.py",
    "test_mentions.py",
    "test_model_standin.py",
    "test_attacks.py",
    "test_config_as_code.py",
    "test_cli_server.py",
    "test_worker_crash.py",
    "test_delivery_recovery.py",
    "test_scheduler_replicas.py",
    "test_assignment.py",
    "test_transcripts.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


T = TypeVar("T")
PG_URL = os.environ.get("GHAPP_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"

if IN_CI and not PG_URL:
    raise pytest.UsageError("CI=true needs GHAPP_TEST_DATABASE_URL (a PostgreSQL URL)")


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on its own loop (callable while a loop is running)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _migrations_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


async def _admin(sql: str) -> None:
    assert PG_URL
    conn = await asyncpg.connect(_asyncpg_dsn(PG_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class PgDatabases:
    """Fresh databases cloned from the template, made and dropped by a background thread.

    Cloning and dropping a database costs ~0.2-0.5 s; done in the test's path for some 750
    PostgreSQL tests that was most of the suite's time. The thread keeps one clone ready
    ahead and drops used ones while tests run: each test still gets a database nobody used.
    """

    AHEAD = 2

    def __init__(self, template: str) -> None:
        self.template = template
        self.ready: queue.Queue[str | BaseException] = queue.Queue()
        self.jobs: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._work()), daemon=True)
        self.thread.start()
        for _ in range(self.AHEAD):
            self.jobs.put(("create", None))

    def take(self) -> str:
        self.jobs.put(("create", None))
        made = self.ready.get(timeout=120)
        if isinstance(made, BaseException):
            raise made
        return made

    def give_back(self, name: str) -> None:
        self.jobs.put(("drop", name))

    def close(self) -> None:
        self.jobs.put(("stop", None))
        self.thread.join(timeout=120)

    async def _work(self) -> None:
        assert PG_URL
        conn = await asyncpg.connect(_asyncpg_dsn(PG_URL))
        made: list[str] = []
        try:
            while True:
                op, name = await asyncio.to_thread(self.jobs.get)
                if op == "stop":
                    break
                try:
                    if op == "create":
                        name = f"ghapp_t_{uuid.uuid4().hex[:16]}"
                        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                        made.append(name)
                        self.ready.put(name)
                    else:
                        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                        made.remove(name)
                except Exception as exc:  # the test that waits for it fails with this
                    self.ready.put(exc)
        finally:
            for name in made:  # clones made ahead and never used
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database migrated to head once per session, cloned for every test."""
    if not PG_URL:
        pytest.skip("GHAPP_TEST_DATABASE_URL is not set")
    name = f"ghapp_tpl_{_migrations_fingerprint()}_{os.getpid()}"

    async def build() -> None:
        await _admin(f'DROP DATABASE IF EXISTS "{name}"')
        await _admin(f'CREATE DATABASE "{name}"')
        db = Database(_asyncpg_dsn(PG_URL, name))
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    run_in_thread(build())
    yield name
    run_in_thread(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'ghapp.db'}"


@pytest.fixture(scope="session")
def pg_databases(pg_template: str) -> Iterator[PgDatabases]:
    databases = PgDatabases(pg_template)
    yield databases
    databases.close()


@pytest.fixture
def pg_url(pg_databases: PgDatabases) -> Iterator[str]:
    assert PG_URL
    name = pg_databases.take()
    yield _asyncpg_dsn(PG_URL, name).replace("postgresql://", "postgresql+asyncpg://", 1)
    pg_databases.give_back(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    url = request.getfixturevalue("sqlite_url")

    async def migrate() -> None:
        db = Database(url)
        await upgrade(db)
        await db.dispose()

    run_in_thread(migrate())
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


def make_settings(db_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db_url,
        "webhook_secret": f"{SECRET},previous-secret",
        "data_dir": tmp_path / "data",
        "github_api_url": "http://127.0.0.1:9",
        "git_url": "file:///nonexistent",
        # The tests' receivers (notifier stand-ins) listen on loopback, which ghapp refuses
        # to send to unless allowed, as an operator whose receivers live inside would allow.
        "notify_allow_hosts": "127.0.0.1",
    }
    values.update(overrides)
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    register_secrets(settings)
    return settings


def pytest_configure(config: pytest.Config) -> None:
    from tests.claude_cli import API_KEY  # imported once pytest has loaded it as a plugin
    from tests.secrets_in_logs import register

    register(API_KEY)


def register_secrets(settings: Settings) -> None:
    """Every secret in ``settings``, for the check that no log line carries one."""
    from tests.secrets_in_logs import register

    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):  # a list of webhook secrets counts one by one
            register(*value.get_secret_value().split(","))
    try:
        register(settings.private_key_pem())
    except OSError:  # a key file a test made unreadable on purpose
        pass


@pytest.fixture
async def client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to a fresh app through httpx's ASGI transport."""
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ghapp.test") as http:
        yield http
