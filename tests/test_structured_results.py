"""Structured results: ``issue/triage`` declares an output schema, its session runs the real
Claude Code CLI with ``--json-schema`` against the model stand-in, and the object the model
returns through the CLI's ``StructuredOutput`` tool is checked by ghapp, stored with the
session, and shown on the run page, in the API, in notifications and in the comment."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from ghapp import structured
from ghapp.clock import SystemClock
from ghapp.db.models import Session
from ghapp.runners.base import Outcome
from ghapp.runners.claude import SessionOptions, checked, command_line
from ghapp.standins.model import ModelRequest, Turn
from ghapp.worker.service import build_dispatcher, notifier_service
from tests import secrets_in_logs
from tests.end_to_end_support import ADMIN, REPO, opened_issue, triage_job, work_off
from tests.notify_support import receiver
from tests.support import runs_of, send, sign_in

TOOL = "StructuredOutput"  # the tool Claude Code 2.1.332 offers for --json-schema
VALID = {
    "kind": "bug",
    "severity": "high",
    "labels": ["bug", "<script>alert(1)</script>"],
    "duplicate_of": None,
    "summary": "The README misspells Hello & World.",
}


def answering(obj: dict[str, Any]):
    """A model that calls the structured-output tool with ``obj`` while it has not been
    answered, and then says it is done (as a real model does after the CLI's retry ask)."""

    def model(request: ModelRequest) -> Turn:
        if TOOL in request.tools and not request.tool_results:
            return Turn.tool(TOOL, obj)
        return Turn.text("Triaged.")

    return model


def offered_schema(request: ModelRequest) -> dict[str, Any]:
    [tool] = [t for t in request.body["tools"] if t.get("name") == TOOL]
    return tool["input_schema"]


async def session_row(db) -> Any:
    async with db.read() as conn:
        return (await conn.execute(select(Session))).one()


async def test_a_valid_triage_result_is_stored_and_shown_everywhere(world, db, model) -> None:
    github, http, state, pool = world
    model.set_default(answering(VALID))
    clock = SystemClock()
    async with receiver() as (url, got):
        secrets_in_logs.register(url)
        key = Fernet.generate_key().decode()  # notifier URLs are stored encrypted
        settings = state.settings.model_copy(update={"secret_key": SecretStr(key)})
        notifiers = notifier_service(settings, db, clock)
        notifier = await notifiers.create({"name": "ops", "type": "n8n", "url": url}, actor="t")
        job = await state.jobs.create(
            triage_job(notifier_ids=[notifier.id], notify_on_success=True), actor="t"
        )
        await send(http, "issues", opened_issue())
        await work_off(pool)
        outbound, dispatcher = build_dispatcher(settings, db, clock, state.signals)
        try:
            assert await dispatcher.deliver_due() == 1
        finally:
            await outbound.aclose()
    # The CLI was given our schema: it offered the model the tool with exactly that input.
    assert offered_schema(model.conversation()[0]) == structured.TRIAGE_SCHEMA
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    session = await session_row(db)
    assert session.structured_result == VALID and session.structured_error is None
    # The API, in camelCase like the rest.
    answer = await http.get(
        f"/api/scheduler/executions/{run.id}", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    [api_session] = answer.json()["sessions"]
    assert api_session["structuredResult"] == VALID and api_session["structuredError"] is None
    # The run page: pretty-printed, escaped.
    await sign_in(http, ADMIN)
    page = (await http.get(f"/runs/{run.id}")).text
    assert "Structured result" in page and "&#34;severity&#34;: &#34;high&#34;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    # The notification: key: value lines in the message, the object itself alongside.
    body = got.got[0].json()
    line = (
        "#1: kind: bug · severity: high · labels: bug, <script>alert(1)</script> · "
        "duplicate_of: None · summary: The README misspells Hello & World."
    )
    assert body["message"] == f"1 of 1 items processed\n{line}"
    assert body["structuredResults"] == [{"itemNumber": 1, "result": VALID}]
    # The comment: as before, plus the object as a compact fenced json block.
    [posted] = github.comments_on(REPO, 1)
    assert "✅ **Triage** finished." in posted["body"]
    compact = json.dumps(VALID, ensure_ascii=False, separators=(",", ":"))
    assert f"```json\n{compact}\n```" in posted["body"]


async def test_an_object_breaking_the_schema_is_recorded_not_stored(world, db, model) -> None:
    github, http, state, pool = world
    model.set_default(answering({**VALID, "severity": "apocalyptic"}))
    job = await state.jobs.create(triage_job(), actor="t")
    await send(http, "issues", opened_issue())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error  # the session ran; its object is refused
    # The CLI refused the object to the model too (it checks the same schema).
    [refusal] = model.tool_results(TOOL)
    assert refusal.is_error and "does not match required schema" in refusal.content
    session = await session_row(db)
    assert session.structured_result is None
    assert session.structured_error == structured.MISSING
    assert session.structured_error.startswith("structured result did not match the schema")
    await sign_in(http, ADMIN)
    page = (await http.get(f"/runs/{run.id}")).text
    assert structured.MISSING in page
    [posted] = github.comments_on(REPO, 1)
    assert f"⚠️ {structured.MISSING}" in posted["body"]


async def test_a_job_without_a_schema_runs_without_json_schema(world, db, model) -> None:
    _github, http, state, pool = world
    job = await state.jobs.create(
        triage_job(command_id=None, custom_prompt="Say hello to {{ item.title }}"), actor="t"
    )
    await send(http, "issues", opened_issue())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    assert TOOL not in model.conversation()[0].tools
    session = await session_row(db)
    assert session.structured_result is None and session.structured_error is None


# -- ghapp's own check (the CLI's is not trusted) ------------------------------------------


def test_builtin_schemas_are_valid_json_schema_and_supported() -> None:
    for schema in structured.BUILTIN_SCHEMAS.values():
        structured.check_schema(schema)
        jsonschema_rs.validator_for(schema)  # a real JSON Schema too


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({**VALID, "kind": "rant"}, "$.kind: not one of bug, feature, question, docs, other"),
        ({**VALID, "labels": [str(n) for n in range(11)]}, "$.labels: more than 10 items"),
        ({**VALID, "labels": [1]}, "$.labels[0]: expected string"),
        ({**VALID, "summary": "x" * 2001}, "$.summary: longer than 2000 characters"),
        ({**VALID, "duplicate_of": "12"}, "$.duplicate_of: expected integer or null"),
        ({**VALID, "duplicate_of": True}, "$.duplicate_of: expected integer or null"),
        ({**VALID, "duplicate_of": 0}, "$.duplicate_of: out of range"),
        ({k: v for k, v in VALID.items() if k != "summary"}, "$: summary is missing"),
        ({**VALID, "assignee": "mallory"}, "$: 'assignee' is not allowed"),
        (["bug"], "$: expected object"),
    ],
)
def test_ghapp_refuses_what_breaks_the_triage_schema(obj: Any, problem: str) -> None:
    result, error = structured.accept(obj, structured.TRIAGE_SCHEMA)
    assert result is None and error == structured.MISMATCH.format(problem=problem)
    assert not jsonschema_rs.is_valid(structured.TRIAGE_SCHEMA, obj)  # it agrees


def test_ghapp_accepts_what_the_triage_schema_allows() -> None:
    for obj in (VALID, {**VALID, "duplicate_of": 7, "labels": []}):
        assert structured.accept(obj, structured.TRIAGE_SCHEMA) == (obj, None)
        assert jsonschema_rs.is_valid(structured.TRIAGE_SCHEMA, obj)


def test_a_huge_object_is_refused_before_it_is_checked() -> None:
    schema = {"type": "object"}
    assert structured.accept({"x": "y" * 20_000}, schema) == (None, structured.TOO_LARGE)


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ([], "$: a schema must be an object"),
        ({"type": "object", "$ref": "#/x"}, "$: unsupported keyword(s) $ref"),
        ({"type": "thing"}, "$: unknown type 'thing'"),
        ({"properties": {"a": {"enum": "x"}}}, "$.a: enum must be a list"),
        ({"description": "x" * 20_000}, "the output schema is larger than 16000 bytes"),
    ],
)
def test_an_unsupported_schema_is_refused_naming_the_problem(schema: Any, problem: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(problem) + "$"):
        structured.check_schema(schema)


def test_the_command_line_carries_the_schema() -> None:
    argv = command_line("claude", "p", SessionOptions(json_schema=structured.TRIAGE_SCHEMA))
    at = argv.index("--json-schema")
    assert json.loads(argv[at + 1]) == structured.TRIAGE_SCHEMA
    assert "--json-schema" not in command_line("claude", "p", SessionOptions())


def outcome(ok: bool = True, value: Any = None) -> Outcome:
    return Outcome(
        ok, "completed" if ok else "failed", "t", None, None, 1, 0.0, 1, 0, None, None, None, value
    )


def test_checked_keeps_only_a_matching_object() -> None:
    good = checked(outcome(value=VALID), structured.TRIAGE_SCHEMA)
    assert (good.structured_result, good.structured_error, good.structured) == (VALID, None, None)
    bad = checked(outcome(value={"kind": "bug"}), structured.TRIAGE_SCHEMA)
    assert bad.structured_result is None and "severity is missing" in (bad.structured_error or "")
    # A failed session says why in its error; no second complaint about the object.
    failed = checked(outcome(ok=False), structured.TRIAGE_SCHEMA)
    assert failed.structured_error is None
    # Without a schema nothing the model volunteered is kept.
    assert checked(outcome(value=VALID), None).structured_result is None


def test_the_comment_section() -> None:
    sneaky = {"summary": "```\n@everyone"}
    text = structured.in_report("Done.", sneaky, None) or ""
    assert text.startswith("Done.\n\n````json\n") and text.endswith("\n````")
    assert structured.in_report(json.dumps(VALID), VALID, None).startswith("```json")  # type: ignore[union-attr]
    assert structured.in_report("Done.", None, None) == "Done."


def test_notification_lines() -> None:
    assert structured.summary_lines({"kind": "bug", "labels": ["a", "b"], "n": None}) == [
        "kind: bug",
        "labels: a, b",
        "n: None",
    ]
