"""Schemathesis against ``/openapi.json`` of a live server: no 5xx, answers as documented.

The server runs with uvicorn on its own loop in a thread, on a fresh SQLite file holding two
repositories, jobs, runs and a notifier, so generated ids often name real objects. Every
operation gets a bounded, derandomised set of examples so the run is fast and repeatable.

The schema is loaded from the same generator the server uses when the module is collected
(``schemathesis.pytest.from_fixture`` reaches into pytest internals that pytest 9.2 removed);
``test_the_served_document_is_the_tested_one`` proves the live server serves exactly it.
Outbound notifier calls (``…/webhooks/{id}/test``) go to a proxy that refuses at once, so a
generated URL never reaches the network.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from ghapp.api import _document as openapi_document
from ghapp.app import create_app
from ghapp.db import Database
from ghapp.db.migrate import upgrade
from ghapp.jobs.service import JobService
from ghapp.tokens import create_token
from tests.api_support import ADMIN_TOKEN, REPO_A, REPO_B, REPO_B_NAME
from tests.conftest import make_settings
from tests.support import add_repository

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 40


async def _seed(db: Database, app_state: object) -> None:
    await add_repository(db)
    await add_repository(
        db, repo_id=REPO_B, full_name=REPO_B_NAME, installation_id=42, account="octo-org"
    )
    jobs: JobService = app_state.jobs  # type: ignore[attr-defined]
    for repo_id in (REPO_A, REPO_B, REPO_A):
        job = await jobs.create(
            {
                "name": "Triage",
                "repo_id": repo_id,
                "cron_expression": "0 9 * * *",
                "command_id": "issue/triage",
            },
            actor="test",
        )
        await jobs.run_now(job.id, actor="test")
    await app_state.notifiers.create(  # type: ignore[attr-defined]
        {"name": "ops", "type": "generic", "url": "http://127.0.0.1:9/hook"}, actor="test"
    )
    await create_token(db, "team-b", [REPO_B_NAME], is_admin=False, actor="test")


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("schema")
    url = f"sqlite+aiosqlite:///{tmp / 'ghapp.db'}"
    saved = {name: os.environ.get(name) for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")}
    os.environ.update(
        HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY=""
    )
    ready = threading.Event()
    box: dict[str, object] = {}

    async def serve() -> None:
        db = Database(url)
        await upgrade(db)
        settings_ = make_settings(
            url,
            tmp,
            admin_token=ADMIN_TOKEN,
            secret_key=Fernet.generate_key().decode(),
            auth_failure_limit=1_000_000,  # this module sends wrong tokens by the hundred
        )
        app = create_app(settings_, db=db)
        await _seed(db, app.state.ghapp)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
        box["server"] = server
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.01)  # polling uvicorn's flag, not a timing assumption
        box["port"] = server.servers[0].sockets[0].getsockname()[1]
        ready.set()
        await task
        await db.dispose()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(60), "the server did not start"
    try:
        yield f"http://127.0.0.1:{box['port']}"
    finally:
        box["server"].should_exit = True  # type: ignore[attr-defined]
        thread.join(30)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def base_url(live_api: str) -> str:
    # The server's own calls go through the refusing proxy; ours must not.
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    return live_api


def test_the_served_document_is_the_tested_one(base_url: str) -> None:
    served = httpx.get(f"{base_url}/openapi.json").json()
    assert served == openapi_document()
    assert len(served["paths"]) > 20


# One pytest item per operation, made here rather than by ``schema.parametrize()``: under
# pytest-xdist, schemathesis runs its per-operation subtests in one item that stops after
# the first operation (1 of 31 operations, 27 of 3,477 examples, all reported as passed).
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


def _examples(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )


def _cases(operation: Any) -> st.SearchStrategy[schemathesis.Case]:
    """Valid requests and invalid ones (wrong types, missing fields, out-of-range values)."""
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )


def test_every_operation_of_the_document_is_tested() -> None:
    documented = {
        f"{method.upper()} {path}"
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    }
    assert {operation.label for operation in OPERATIONS} == documented


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_every_operation_answers_as_documented(operation: Any, base_url: str) -> None:
    @given(case=_cases(operation))
    @_examples(EXAMPLES)
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, checks=CHECKS
        )

    answers_as_documented()


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_without_a_token_every_operation_is_401(operation: Any, base_url: str) -> None:
    @given(case=operation.as_strategy())
    @_examples(2)
    def refused(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401
        case.validate_response(response, checks=CHECKS)

    refused()
