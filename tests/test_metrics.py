"""``GET /metrics``: deliveries by event and outcome, webhook latency, runs, queue depth,
notifications, sessions and GitHub's rate limit — in Prometheus' text format."""

from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from ghapp import logs
from ghapp.app import create_app
from ghapp.db.models import RunStatus
from ghapp.github.app import GitHubApp
from ghapp.standins.github import GitHubStandIn
from tests.support import add_repository, load, send


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_metrics_count_deliveries_latency_runs_and_queue(client, db):
    await add_repository(db)
    app = client._transport.app  # type: ignore[attr-defined]
    await app.state.ghapp.jobs.create(
        {
            "name": "triage",
            "repo_id": 186853002,
            "command_id": "issue/triage",
            "event_triggers": [{"event": "issues.opened"}],
        },
        actor="t",
    )
    payload = load("issues/opened.payload.json")
    assert (await send(client, "issues", payload)).status_code == 202
    assert (await send(client, "issues", payload)).status_code == 200  # the duplicate
    refused = await client.post(
        "/webhooks/github",
        content=b"{}",
        headers={
            "content-type": "application/json",
            "x-github-event": "issues",
            "x-github-delivery": "d-1",
            "x-hub-signature-256": "sha256=00",
        },
    )
    assert refused.status_code == 401
    answer = await client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    got = samples(answer.text)
    assert (
        got[("ghapp_webhook_deliveries_total", (("event", "issues"), ("outcome", "accepted")))] == 1
    )
    assert (
        got[("ghapp_webhook_deliveries_total", (("event", "issues"), ("outcome", "duplicate")))]
        == 1
    )
    assert (
        got[("ghapp_webhook_deliveries_total", (("event", "-"), ("outcome", "rejected_401")))] == 1
    )
    assert got[("ghapp_webhook_seconds_count", ())] == 3
    assert got[("ghapp_runs", (("status", RunStatus.queued.value),))] == 1
    assert got[("ghapp_runs", (("status", RunStatus.failed.value),))] == 0
    assert got[("ghapp_queue_depth", ())] == 1


async def test_rate_limit_remaining_per_installation_comes_from_github_answers(settings, db):
    standin = GitHubStandIn(app_id=99)
    standin.add_installation(957387, "Codertocat")
    standin.add_repo("Codertocat/Hello-World", 957387, repo_id=186853002)
    with standin.serve_in_thread() as api_url:
        settings.github_api_url = api_url
        settings.app_id = 99
        settings.private_key = SecretStr(standin.private_key_pem)
        app = create_app(settings, db=db)
        metrics = app.state.ghapp.metrics
        github = GitHubApp(settings, app.state.ghapp.clock)
        metrics.watch_github(github)
        try:
            gh = await github.for_installation(957387)
            await gh.getitem("/repos/Codertocat/Hello-World")
        finally:
            await github.aclose()
    got = samples(metrics.render().decode())
    left = got[("ghapp_github_rate_limit_remaining", (("installation", "957387"),))]
    assert 0 < left < 5000


def test_log_lines_carry_the_ids_of_what_is_being_worked_on():
    import io

    stream = io.StringIO()
    logs.configure("info", stream)
    try:
        log = logging.getLogger("ghapp.test")
        with logs.bind(delivery_id="d-7"), logs.bind(run_id=3):
            with logs.bind(session_id=9):
                log.info("inside", extra={"step": "clone"})
            log.info("after the session")
        log.info("outside")
    finally:
        logs.configure("info")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["delivery_id"] == "d-7" and lines[0]["run_id"] == 3
    assert lines[0]["session_id"] == 9 and lines[0]["step"] == "clone"
    assert "session_id" not in lines[1] and lines[1]["run_id"] == 3
    assert "run_id" not in lines[2]
