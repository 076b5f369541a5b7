"""An API under test: an app with an admin token, two repositories and a token for one."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from starlette.applications import Starlette

from ghapp.app import create_app
from ghapp.clock import FakeClock
from ghapp.db import Database
from ghapp.db.models import Run
from ghapp.tokens import create_token
from tests import secrets_in_logs
from tests.conftest import make_settings
from tests.support import add_repository

ADMIN_TOKEN = "admin-token-for-tests"
REPO_A = 186853002
REPO_A_NAME = "Codertocat/Hello-World"
REPO_B = 777
REPO_B_NAME = "octo-org/other"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday


@dataclass
class ApiUnderTest:
    app: Starlette
    http: httpx.AsyncClient
    db: Database
    clock: FakeClock
    scoped_token: str  # may act on REPO_B only

    @property
    def state(self) -> Any:
        return self.app.state.ghapp

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def scoped(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.scoped_token}"}

    async def job(self, repo_id: int = REPO_A, **changes: Any) -> dict[str, Any]:
        body = {
            "name": "Daily triage",
            "cron_expression": "0 9 * * 1-5",
            "target_type": "issues",
            "command_id": "issue/triage",
            **changes,
        }
        answer = await self.http.post(
            f"/api/repos/{repo_id}/schedules", json=body, headers=self.admin()
        )
        assert answer.status_code == 201, answer.text
        return answer.json()


@asynccontextmanager
async def api_under_test(
    db_url: str, db: Database, tmp_path: Path, **settings: Any
) -> AsyncIterator[ApiUnderTest]:
    """``settings`` override :func:`make_settings`'s."""
    await add_repository(db)
    await add_repository(
        db, repo_id=REPO_B, full_name=REPO_B_NAME, installation_id=42, account="octo-org"
    )
    settings = make_settings(
        db_url,
        tmp_path,
        **{"admin_token": ADMIN_TOKEN, "secret_key": Fernet.generate_key().decode(), **settings},
    )
    clock = FakeClock(NOW)
    app = create_app(settings, db=db, clock=clock)
    created = await create_token(db, "team-b", [REPO_B_NAME], is_admin=False, actor="test")
    secrets_in_logs.register(created.token)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ghapp.test") as http:
        yield ApiUnderTest(app, http, db, clock, created.token)


def fill(path: str, ids: dict[str, int]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


async def add_run(api: ApiUnderTest, job_id: int, status: str = "queued", **values: Any) -> int:
    async with api.db.write() as conn:
        result = await conn.execute(
            Run.__table__.insert().values(
                job_id=job_id,
                repo_id=values.pop("repo_id", REPO_A),
                trigger_type="manual",
                trigger_detail={},
                status=status,
                queued_at=api.clock.now(),
                run_after=api.clock.now(),
                **values,
            )
        )
        return int(result.inserted_primary_key[0])
