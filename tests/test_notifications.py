"""Notifications end to end: queued with the event, delivered to real receivers, retried,
recorded per attempt, auto-disabled, surviving restarts; formats checked field by field."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, select, update

from ghapp.clock import FakeClock
from ghapp.db import Database
from ghapp.db.migrate import upgrade
from ghapp.db.models import AuditEntry, Job, Notification, Notifier, Run, RunStatus
from ghapp.notify.crypto import SecretBox
from ghapp.notify.dispatch import DISABLE_AFTER, Dispatcher
from ghapp.notify.email import SmtpSettings
from ghapp.notify.outbound import Outbound
from ghapp.notify.sender import Sender
from ghapp.notify.service import NotifierService
from ghapp.runqueue.finish import finish_run
from ghapp.signals import Signals
from tests import secrets_in_logs
from tests.notify_support import closed_port, receiver, self_signed, smtp_server
from tests.support import add_repository

NOW = datetime(2026, 1, 19, 9, 0, tzinfo=UTC)
REPO = 186853002
PUBLIC = "https://ghapp.example"
LOOPBACK = Outbound.from_allow("127.0.0.1")  # the receivers here are all on loopback


class Setup:
    def __init__(self, db: Database, smtp: SmtpSettings | None = None) -> None:
        self.db = db
        self.clock = FakeClock(NOW)
        self.signals = Signals()
        self.box = SecretBox(Fernet.generate_key().decode())
        self.service = NotifierService(db, self.clock, self.box, PUBLIC, LOOPBACK)
        self.http = LOOPBACK.client()
        self.smtp = smtp or SmtpSettings(host=None)

    def dispatcher(self, db: Database | None = None, timeout_s: float = 5.0) -> Dispatcher:
        service = NotifierService(db or self.db, self.clock, self.box, PUBLIC, LOOPBACK)
        sender = Sender(self.http, self.smtp, timeout_s)
        return Dispatcher(
            db or self.db,
            self.clock,
            self.signals,
            service,
            sender,
            max_attempts=5,
            jitter=lambda cap: cap,
        )

    async def notifier(self, **spec: Any) -> int:
        values = {"name": "ops", "type": "generic", **spec}
        secret = values.pop("secret", None)
        secrets_in_logs.register(values.get("url"), secret)
        row = await self.service.create(values, actor="test", secret=secret)
        return int(row.id)

    async def job(self, notifier_ids: list[int], **values: Any) -> int:
        async with self.db.write() as conn:
            values = {
                "name": "Daily Context Analysis",
                "repo_id": REPO,
                "task_type": "analyze",
                "notifier_ids": notifier_ids,
                "notify_on_success": True,
                "notify_on_failure": True,
                **values,
            }
            result = await conn.execute(insert(Job).values(**values))
            return int(result.inserted_primary_key[0])

    async def finished_run(self, job_id: int, status: str = "completed", **counters: Any) -> int:
        """A run that started 1.2 s ago and ends now: the notification is queued with it."""
        async with self.db.write() as conn:
            result = await conn.execute(
                insert(Run).values(
                    job_id=job_id,
                    repo_id=REPO,
                    trigger_type="scheduled",
                    status="running",
                    queued_at=NOW,
                    run_after=NOW,
                    started_at=self.clock.now() - timedelta(seconds=1.2),
                )
            )
            run_id = int(result.inserted_primary_key[0])
            await finish_run(
                conn,
                run_id,
                RunStatus(status),
                self.clock.now(),
                public_url=PUBLIC,
                error="boom" if status == "failed" else None,
                **counters,
            )
        return run_id

    async def notifications(self) -> list[Any]:
        async with self.db.read() as conn:
            return list((await conn.execute(select(Notification).order_by(Notification.id))).all())

    async def notifier_row(self, notifier_id: int) -> Any:
        async with self.db.read() as conn:
            return (await conn.execute(select(Notifier).where(Notifier.id == notifier_id))).one()


@pytest.fixture
async def setup(db):
    await add_repository(db)
    state = Setup(db)
    yield state
    await state.http.aclose()


COUNTERS = {"items_found": 5, "items_processed": 3, "cost_usd": 0.1234}


# -- formats, field by field ------------------------------------------------------------------


async def test_slack_gets_block_kit_with_the_facts_and_a_link(setup):
    async with receiver() as (url, got):
        job = await setup.job([await setup.notifier(type="slack", url=url)])
        run_id = await setup.finished_run(job, **COUNTERS)
        assert await setup.dispatcher().deliver_due() == 1
    message = got.got[0].json()
    header, section, context = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "✅ Task completed: Daily Context Analysis"},
    }
    assert section["type"] == "section"
    assert [f["text"] for f in section["fields"]] == [
        "*Task:*\nDaily Context Analysis",
        "*Duration:*\n1.2 seconds",
        "*Items:*\n3 of 5",
        "*Cost:*\n$0.12",
        "*Status:*\ncompleted",
    ]
    assert all(f["type"] == "mrkdwn" for f in section["fields"])
    assert context["type"] == "context"
    assert context["elements"][0]["text"] == (
        f"3 of 5 items processed | <{PUBLIC}/runs/{run_id}|View details>"
    )
    assert message["text"] == "✅ Task completed: Daily Context Analysis"  # notification text


async def test_discord_gets_an_embed_coloured_by_status(setup):
    async with receiver() as (url, got):
        job = await setup.job([await setup.notifier(type="discord", url=url)])
        await setup.finished_run(job, status="failed", **COUNTERS)
        await setup.dispatcher().deliver_due()
    [embed] = got.got[0].json()["embeds"]
    assert embed["title"] == "❌ Task failed: Daily Context Analysis"
    assert embed["color"] == 15548997
    assert embed["fields"][:2] == [
        {"name": "Task", "value": "Daily Context Analysis", "inline": True},
        {"name": "Duration", "value": "1.2 seconds", "inline": True},
    ]
    assert embed["footer"] == {"text": "boom"}
    assert embed["timestamp"] == "2026-01-19T09:00:00.000Z"


async def test_n8n_gets_the_seed_event_json(setup):
    async with receiver() as (url, got):
        job = await setup.job([await setup.notifier(type="n8n", url=url)])
        run_id = await setup.finished_run(job, **COUNTERS)
        await setup.dispatcher().deliver_due()
    body = got.got[0].json()
    assert body["event"] == "task_completed"
    assert body["timestamp"] == "2026-01-19T09:00:00.000Z"
    assert body["task"] == {
        "id": str(job),
        "name": "Daily Context Analysis",
        "taskType": "analyze",
        "type": "analyze",
    }
    assert body["execution"] == {
        "id": str(run_id),
        "status": "completed",
        "durationMs": 1200,
        "triggerType": "scheduled",
    }
    assert body["metrics"]["projectsProcessed"] == 3 and body["metrics"]["issuesFound"] == 5
    assert body["metrics"]["tokensSaved"] == 0


async def test_generic_is_signed_like_github_signs_webhooks(setup):
    async with receiver() as (url, got):
        job = await setup.job([await setup.notifier(type="generic", url=url, secret="shh")])
        await setup.finished_run(job, **COUNTERS)
        await setup.dispatcher().deliver_due()
    request = got.got[0]
    expected = "sha256=" + hmac.new(b"shh", request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-ghapp-signature-256"], expected)
    assert request.headers["x-ghapp-event"] == "task_completed"
    assert request.json()["event"] == "task_completed"


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_email_over_smtp_with_both_bodies(db, tmp_path, mode):
    await add_repository(db)
    server_tls, client_tls = self_signed(tmp_path)
    async with smtp_server(mode, server_tls, auth=("ghapp", "pw")) as (port, mailbox):
        state = Setup(
            db,
            SmtpSettings(
                host="127.0.0.1",
                port=port,
                security=mode,
                username="ghapp",
                password="pw",
                sender="ghapp@example.com",
                ssl_context=client_tls,
            ),
        )
        try:
            notifier = await state.notifier(
                type="email", recipients=["a@example.com", "b@example.org"]
            )
            job = await state.job([notifier])
            run_id = await state.finished_run(job, status="failed", **COUNTERS)
            assert await state.dispatcher().deliver_due() == 1
        finally:
            await state.http.aclose()
        [(sender, recipients, message)] = mailbox.messages
    assert sender == "ghapp@example.com" and recipients == ["a@example.com", "b@example.org"]
    assert message["Subject"] == "❌ Task failed: Daily Context Analysis"
    assert message["To"] == "a@example.com, b@example.org"
    assert message["X-Ghapp-Event"] == "task_failed"
    text, html = (part for part in message.walk() if part.get_content_maintype() == "text")
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    plain = text.get_payload(decode=True).decode()
    for line in (
        "Task: Daily Context Analysis",
        "Duration: 1.2 seconds",
        "Items: 3 of 5",
        "Cost: $0.12",
        "boom",
        f"Details: {PUBLIC}/runs/{run_id}",
    ):
        assert line in plain
    page = html.get_payload(decode=True).decode()
    assert "<th align='left'>Duration</th><td>1.2 seconds</td>" in page
    assert f'href="{PUBLIC}/runs/{run_id}"' in page
    [row] = await state.notifications()
    assert (row.status, row.http_status, row.attempts) == ("sent", 250, 1)


async def test_email_refused_permanently_is_not_retried(db, tmp_path):
    await add_repository(db)
    async with smtp_server("plain") as (port, _mailbox):
        state = Setup(
            db,
            SmtpSettings(
                host="127.0.0.1", port=port, security="none", username="nobody", password="x"
            ),
        )
        try:
            job = await state.job(
                [await state.notifier(type="email", recipients=["a@example.com"])]
            )
            await state.finished_run(job)
            await state.dispatcher().deliver_due()
        finally:
            await state.http.aclose()
    [row] = await state.notifications()
    # The server offers no AUTH: smtplib gives up before sending; nothing to retry.
    assert (row.status, row.attempts) == ("failed", 1)
    assert "AUTH" in row.error


# -- which events, for whom ---------------------------------------------------------------------


async def test_only_subscribed_enabled_notifiers_get_events_the_job_wants(setup):
    async with receiver() as (url, got):
        failures_only = await setup.notifier(url=url, event_types=["task_failed"])
        everything = await setup.notifier(
            url=url, event_types=["task_started", "task_completed", "task_failed"]
        )
        disabled = await setup.notifier(url=url, enabled=False)
        quiet_job = await setup.job([failures_only, everything, disabled], notify_on_success=False)
        await setup.finished_run(quiet_job)  # success, but the job does not notify on it
        await setup.finished_run(quiet_job, status="failed")
        await setup.finished_run(quiet_job, status="skipped")
        await setup.dispatcher().deliver_due()
    rows = await setup.notifications()
    assert sorted((r.notifier_id, r.event) for r in rows) == [
        (failures_only, "task_failed"),
        (everything, "task_failed"),
    ]
    assert len(got.got) == 2


async def test_three_failures_in_a_row_raise_a_health_alert(setup):
    async with receiver() as (url, got):
        job = await setup.job([await setup.notifier(url=url, event_types=["health_alert"])])
        for _ in range(3):
            await setup.finished_run(job, status="failed")
        await setup.dispatcher().deliver_due()
    [alert] = [r.json() for r in got.got]
    assert alert["event"] == "health_alert"
    assert alert["message"].startswith("Daily Context Analysis failed 3 times in a row")


# -- failures, retries, disabling ------------------------------------------------------------


async def test_5xx_and_429_are_retried_with_backoff_and_retry_after(setup):
    async with receiver(500, (429, {"Retry-After": "7"}), 502, 200) as (url, got):
        job = await setup.job([await setup.notifier(url=url)])
        await setup.finished_run(job)
        dispatcher = setup.dispatcher()
        await dispatcher.deliver_due()  # 500 → wait 5 s
        assert await dispatcher.next_due() == NOW + timedelta(seconds=5)
        assert await dispatcher.deliver_due() == 0  # not due yet
        setup.clock.advance(timedelta(seconds=5))
        await dispatcher.deliver_due()  # 429, Retry-After: 7
        assert await dispatcher.next_due() == NOW + timedelta(seconds=12)
        setup.clock.advance(timedelta(seconds=7))
        await dispatcher.deliver_due()  # 502 → wait 20 s (5 · 2²)
        setup.clock.advance(timedelta(seconds=20))
        await dispatcher.deliver_due()  # 200
    [row] = await setup.notifications()
    assert (row.status, row.attempts, row.http_status) == ("sent", 4, 200)
    assert [a["status_code"] for a in row.attempt_log] == [500, 429, 502, 200]
    assert len(got.got) == 4
    notifier = await setup.notifier_row(row.notifier_id)
    assert notifier.failure_count == 0 and notifier.last_used_at == setup.clock.now()


async def test_other_4xx_fail_at_once(setup):
    async with receiver(404) as (url, got):
        job = await setup.job([await setup.notifier(url=url)])
        await setup.finished_run(job)
        await setup.dispatcher().deliver_due()
        setup.clock.advance(timedelta(hours=1))
        await setup.dispatcher().deliver_due()
    [row] = await setup.notifications()
    assert (row.status, row.attempts, row.error) == ("failed", 1, "HTTP 404 Not Found")
    assert len(got.got) == 1


async def test_timeouts_and_refused_connections_are_retried_until_attempts_run_out(setup):
    async with receiver("hang", "hang", "hang", "hang", "hang") as (url, got):
        slow = await setup.notifier(url=url)
        refused = await setup.notifier(url=f"http://127.0.0.1:{closed_port()}/hook")
        job = await setup.job([slow, refused])
        await setup.finished_run(job)
        dispatcher = setup.dispatcher(timeout_s=0.2)
        for _ in range(6):
            await dispatcher.deliver_due()
            setup.clock.advance(timedelta(minutes=10))
    rows = {r.notifier_id: r for r in await setup.notifications()}
    assert (rows[slow].status, rows[slow].attempts) == ("failed", 5)
    assert rows[slow].error == "no answer within 0.2 s"
    assert (rows[refused].status, rows[refused].attempts) == ("failed", 5)
    assert "ConnectError" in rows[refused].error
    assert len(rows[refused].attempt_log) == 5 and len(got.got) == 5
    assert (await setup.notifier_row(slow)).failure_count == 5


async def test_ten_failures_in_a_row_disable_the_notifier(setup):
    async with receiver(*([400] * 12)) as (url, got):
        notifier = await setup.notifier(url=url, event_types=["task_failed"])
        job = await setup.job([notifier])
        for _ in range(DISABLE_AFTER):
            await setup.finished_run(job, status="failed")
        await setup.dispatcher().deliver_due()
        row = await setup.notifier_row(notifier)
        assert (row.enabled, row.failure_count) == (False, DISABLE_AFTER)
        await setup.finished_run(job, status="failed")  # not queued: the notifier is off
        await setup.dispatcher().deliver_due()
    assert len(got.got) == DISABLE_AFTER
    async with setup.db.read() as conn:
        actions = list((await conn.execute(select(AuditEntry.action, AuditEntry.actor))).all())
    assert ("notifier.disable", "ghapp") in actions
    updated = await setup.service.update(notifier, {"enabled": True}, actor="test")
    assert updated.failure_count == 0  # re-enabling starts afresh


async def test_a_slow_receiver_never_holds_up_the_run(setup):
    async with receiver("hang") as (url, got):
        job = await setup.job([await setup.notifier(url=url)])
        run_id = await setup.finished_run(job)  # returns without waiting for anyone
        async with setup.db.read() as conn:
            run = (await conn.execute(select(Run).where(Run.id == run_id))).one()
        assert run.status == "completed"
        import asyncio

        sending = asyncio.create_task(setup.dispatcher().deliver_due())
        await got.arrived.wait()
        [row] = await setup.notifications()
        assert row.status == "sending"  # the receiver holds the request; the run is done
        got.release.set()
        await sending
    [row] = await setup.notifications()
    assert row.status == "sent"


# -- restarts ---------------------------------------------------------------------------------


async def test_pending_and_half_sent_notifications_survive_a_restart(setup, db_url):
    async with receiver(200, 200) as (url, got):
        job = await setup.job([await setup.notifier(url=url)])
        await setup.finished_run(job)
        await setup.finished_run(job, status="failed")
        # A process claims the first and dies before sending: the claim lapses.
        async with setup.db.write() as conn:
            first = (await conn.execute(select(Notification.id).order_by(Notification.id))).scalar()
            await conn.execute(
                update(Notification)
                .where(Notification.id == first)
                .values(status="sending", next_attempt_at=NOW + timedelta(minutes=2), attempts=1)
            )
        await setup.db.dispose()
        fresh = Database(db_url)  # "after the restart": a new engine on the same database
        try:
            dispatcher = setup.dispatcher(fresh)
            assert await dispatcher.deliver_due() == 1  # the pending one
            setup.clock.advance(timedelta(minutes=2))
            assert await dispatcher.deliver_due() == 1  # the lapsed claim
        finally:
            await fresh.dispose()
    events = sorted(r.json()["event"] for r in got.got)
    assert events == ["task_completed", "task_failed"]


# -- secrets at rest ------------------------------------------------------------------------------


async def test_notifier_urls_are_not_readable_in_the_database_file(tmp_path, sqlite_url):
    # Reads the SQLite file itself: the SQLite database only.
    db = Database(sqlite_url)
    await upgrade(db)
    await add_repository(db)
    state = Setup(db)
    try:
        await state.notifier(type="slack", url="https://hooks.slack.com/services/T1/B2/secret-part")
        await state.notifier(type="email", recipients=["oncall@example.com"])
    finally:
        await state.http.aclose()
    await db.dispose()
    path = db_file(sqlite_url)
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert b"secret-part" not in raw  # the masked form (host and ****) is in the audit log
    assert b"oncall@example.com" not in raw


def db_file(url: str):
    from pathlib import Path

    return Path(url.split("///", 1)[1])


# -- wiring: a worker's run wakes the dispatcher; the API's test route -------------------------


async def test_a_finished_run_is_delivered_by_the_running_dispatcher(setup):
    import asyncio

    from ghapp.runqueue.claim import RunQueue
    from ghapp.worker.pool import PoolSettings, RunResult, WorkerPool

    class Done:
        async def execute(self, context: Any) -> RunResult:
            return RunResult(RunStatus.completed, counters={"items_found": 1, "items_processed": 1})

    async with receiver() as (url, got):
        job = await setup.job(
            [await setup.notifier(url=url, event_types=["task_started", "task_completed"])]
        )
        async with setup.db.write() as conn:
            await conn.execute(
                insert(Run).values(
                    job_id=job, repo_id=REPO, trigger_type="manual", queued_at=NOW, run_after=NOW
                )
            )
        pool = WorkerPool(
            setup.db,
            setup.clock,
            setup.signals,
            RunQueue(setup.db, "w1"),
            Done(),
            PoolSettings(concurrency=1, public_url=PUBLIC),
        )
        delivering = asyncio.create_task(setup.dispatcher().run())
        try:
            await pool.process(await pool.queue.claim(setup.clock.now()))
            while len(got.got) < 2:  # woken by the pool's signal, not by time passing
                got.arrived.clear()
                await got.arrived.wait()
        finally:
            delivering.cancel()
    assert sorted(r.json()["event"] for r in got.got) == ["task_completed", "task_started"]


async def test_the_api_test_route_reports_the_receivers_answer(db_url, db, tmp_path):
    from tests.api_support import api_under_test

    async with api_under_test(db_url, db, tmp_path) as api, receiver(503) as (url, got):
        made = await api.http.post(
            "/api/scheduler/webhooks",
            headers=api.admin(),
            json={"name": "ops", "webhookType": "slack", "webhookUrl": url},
        )
        hook_id = made.json()["id"]
        answer = await api.http.post(f"/api/scheduler/webhooks/{hook_id}/test", headers=api.admin())
        assert answer.status_code == 200
        result = answer.json()
        expected = (False, 503, "HTTP 503 Service Unavailable")
        assert (result["ok"], result["statusCode"], result["error"]) == expected
        assert '"status":503' in result["response"]
        assert got.got[0].json()["blocks"][0]["text"]["text"].startswith("✅ Task completed")
        again = await api.http.post(f"/api/scheduler/webhooks/{hook_id}/test", headers=api.admin())
        assert again.json()["ok"] is True
        shown = (
            await api.http.get(f"/api/scheduler/webhooks/{hook_id}", headers=api.admin())
        ).json()
        assert shown["lastUsedAt"] is not None and url not in str(shown)
        refused = await api.http.post(
            "/api/scheduler/webhooks",
            headers=api.admin(),
            json={"name": "mail", "webhookType": "email", "webhookUrl": "https://x.example/"},
        )
        assert refused.status_code == 422
        mail = await api.http.post(
            "/api/scheduler/webhooks",
            headers=api.admin(),
            json={"name": "mail", "webhookType": "email", "recipients": ["ops@example.com"]},
        )
        assert mail.status_code == 201, mail.text
        assert mail.json()["recipients"] == ["o***@example.com"]
        assert mail.json()["webhookUrl"] == "mailto:1 recipient"
