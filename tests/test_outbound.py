"""Notifier URLs cannot reach inside (SSRF): refused when saved, refused again when sent.

Refusals go through the API and the dashboard with a token scoped to one repository, as a
tenant would try them; the receivers are real HTTP servers on loopback, reachable only
where a test allows loopback as an operator would (``GHAPP_NOTIFY_ALLOW_HOSTS``). DNS
answers that change are played by :class:`ghapp.notify.outbound.Hosts`, handed to the
code under test explicitly.
"""

from __future__ import annotations

import io
import logging
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError
from sqlalchemy import select

from ghapp import logs
from ghapp.app import create_app
from ghapp.clock import FakeClock
from ghapp.db import Database
from ghapp.db.models import Notification
from ghapp.notify.crypto import SecretBox
from ghapp.notify.dispatch import Dispatcher
from ghapp.notify.email import SmtpSettings
from ghapp.notify.outbound import Hosts, Outbound
from ghapp.notify.send import deliver
from ghapp.notify.sender import Sender
from ghapp.notify.service import NotifierService
from ghapp.settings import Settings
from ghapp.signals import Signals
from tests.api_support import REPO_B, ApiUnderTest, api_under_test
from tests.notify_support import https_receiver, receiver, self_signed
from tests.secrets_in_logs import MASK, leaks
from tests.support import sign_in

WEBHOOKS = "/api/scheduler/webhooks"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PAYLOAD = {"event": "task_completed", "timestamp": "2026-03-02T08:00:00Z", "message": "hi"}
INTERNAL = (
    "http://127.0.0.1:9/hook",
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://ci.localhost/hook",
    "http://0x7f000001/hook",  # 127.0.0.1 in hexadecimal
    "http://2130706433/hook",  # … as one decimal number
    "http://017700000001/hook",  # … in octal
    "http://127.1/hook",  # … with the zeros left out
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "http://[64:ff9b::7f00:1]/hook",  # NAT64
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://10.0.0.5/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # shared address space (carrier-grade NAT)
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
)


def hook(url: str) -> dict[str, object]:
    """A generic notifier for REPO_B, the scoped token's repository."""
    return {"name": "ops", "webhookType": "generic", "webhookUrl": url, "repoIds": [REPO_B]}


def strict_app(api: ApiUnderTest) -> httpx.AsyncClient:
    """Another app on the same database and key that allows no internal receiver."""
    changed = api.state.settings.model_copy(update={"notify_allow_hosts": ""})
    app = create_app(changed, db=api.db, clock=api.clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ghapp.test")


def service(db: Database, outbound: Outbound) -> NotifierService:
    return NotifierService(
        db, FakeClock(NOW), SecretBox(Fernet.generate_key().decode()), "", outbound
    )


# -- refused when saved ------------------------------------------------------------------------


async def test_every_spelling_of_an_internal_address_is_refused_when_saved(db_url, db, tmp_path):
    async with api_under_test(db_url, db, tmp_path, notify_allow_hosts="") as api:
        for url in INTERNAL:
            answer = await api.http.post(WEBHOOKS, headers=api.scoped(), json=hook(url))
            assert answer.status_code == 422, (url, answer.text)
            [problem] = answer.json()["detail"]
            assert problem["field"] == "webhookUrl", url
            assert "GHAPP_NOTIFY_ALLOW_HOSTS" in problem["reason"], url
        listed = await api.http.get(WEBHOOKS, headers=api.admin())
        assert listed.json()["webhooks"] == []

        # A name that does not resolve now is kept (DNS may be down); sending decides.
        made = await api.http.post(
            WEBHOOKS, headers=api.scoped(), json=hook("https://hooks.example/x")
        )
        assert made.status_code == 201, made.text
        changed = await api.http.patch(
            f"{WEBHOOKS}/{made.json()['id']}",
            headers=api.scoped(),
            json={"webhookUrl": "http://[::ffff:7f00:1]:8080/x"},
        )
        assert changed.status_code == 422
        assert changed.json()["detail"][0]["field"] == "webhookUrl"


async def test_the_dashboard_refuses_an_internal_url_on_the_url_field(db_url, db, tmp_path):
    async with api_under_test(db_url, db, tmp_path, notify_allow_hosts="") as api:
        csrf = await sign_in(api.http, api.scoped_token)
        form = {
            "csrf_token": csrf,
            "name": "ops",
            "type": "generic",
            "url": "http://169.254.169.254/latest/meta-data/",
            "repo_ids": str(REPO_B),
            "event_types": "task_failed",
            "enabled": "1",
        }
        refused = await api.http.post("/notifiers", data=form)
        assert refused.status_code == 422
        assert 'id="url-error">the host is an internal address (link-local)' in refused.text
        assert await api.state.notifiers.list() == []


def test_a_mistyped_allow_list_is_a_settings_error():
    with pytest.raises(ValidationError, match=r"10\.0\.0\.0/33"):
        Settings(_env_file=None, notify_allow_hosts="hooks.corp, 10.0.0.0/33")  # type: ignore[call-arg]
    allowed = Settings(_env_file=None, notify_allow_hosts="Hooks.Corp., 10.0.0.0/8")  # type: ignore[call-arg]
    outbound = Outbound.from_settings(allowed)
    assert outbound.allowed_names == {"hooks.corp"}
    assert outbound.refusal_of("10.1.2.3") is None and outbound.refusal_of("192.168.0.1")


# -- refused when sent ------------------------------------------------------------------------


async def test_a_notifier_saved_while_allowed_is_refused_once_it_no_longer_is(db_url, db, tmp_path):
    async with api_under_test(db_url, db, tmp_path) as api, receiver() as (url, got):
        made = await api.http.post(WEBHOOKS, headers=api.scoped(), json=hook(url))
        assert made.status_code == 201, made.text
        hook_id = made.json()["id"]
        sent = await api.http.post(f"{WEBHOOKS}/{hook_id}/test", headers=api.scoped())
        assert sent.json()["ok"] is True and len(got.got) == 1  # loopback allowed, as set

        async with strict_app(api) as strict:  # the operator took loopback off the list
            refused = await strict.post(f"{WEBHOOKS}/{hook_id}/test", headers=api.scoped())
        result = refused.json()
        assert (result["ok"], result["statusCode"]) == (False, None)
        assert result["error"].startswith("not sent: the host is an internal address (loopback)")
        assert len(got.got) == 1  # nothing more reached the receiver


async def test_a_name_that_rebinds_to_loopback_after_saving_gets_nothing(db):
    """DNS answers an allowed address when the notifier is saved, loopback when it is sent:
    the test button and the dispatcher both refuse, and the receiver hears nothing."""
    # 127.0.0.2 plays the public address: allowed, and still on this machine should a bug
    # ever connect to it. 127.0.0.1, where the receiver listens, is not allowed.
    hosts = Hosts({"hooks.test": ["127.0.0.2"]})
    outbound = Outbound.from_allow("127.0.0.2", hosts)
    notifiers = service(db, outbound)
    async with receiver() as (url, got), outbound.client() as http:
        port = urlsplit(url).port
        row = await notifiers.create(
            {"name": "ops", "type": "generic", "url": f"http://hooks.test:{port}/hook"}, "test"
        )
        hosts.names["hooks.test"] = ["127.0.0.1"]  # the receiver's address, now

        sender = Sender(http, SmtpSettings(host=None))
        attempt = await notifiers.test(row.id, "test", sender)
        assert not attempt.ok and attempt.error.startswith("not sent: the host is an internal")

        async with db.session() as session:
            session.add(
                Notification(
                    notifier_id=row.id,
                    event="task_completed",
                    payload=PAYLOAD,
                    next_attempt_at=NOW,
                    created_at=NOW,
                )
            )
        dispatcher = Dispatcher(db, notifiers.clock, Signals(), notifiers, sender)
        assert await dispatcher.deliver_due() == 1
        async with db.read() as conn:
            queued = (
                await conn.execute(select(Notification).where(Notification.event != "test"))
            ).one()
        # Refused is final: trying again would only ask the same question of DNS.
        assert (queued.status, queued.attempts) == ("failed", 1)
        assert queued.error.startswith("not sent: the host is an internal address (loopback)")
    assert got.got == []


async def test_one_internal_answer_among_allowed_ones_refuses_the_name():
    hosts = Hosts({"mixed.test": ["127.0.0.2", "127.0.0.1"]})
    outbound = Outbound.from_allow("127.0.0.2", hosts)
    assert "internal address (loopback)" in (await outbound.refusal("http://mixed.test/h") or "")
    async with receiver() as (url, got), outbound.client() as http:
        port = urlsplit(url).port
        attempt = await deliver(http, "generic", f"http://mixed.test:{port}/hook", PAYLOAD)
    assert not attempt.ok and attempt.error.startswith("not sent:") and got.got == []


async def test_a_host_that_cannot_be_spelt_is_a_failed_attempt_not_a_crash():
    async with Outbound().client() as http:
        for url in ("http://\u24dbocalhost:1/", "http://xn--/"):
            attempt = await deliver(http, "generic", url, PAYLOAD)
            assert attempt.error == "not sent: the URL's host is not valid", url
            assert not attempt.retryable


async def test_the_connection_goes_to_the_checked_address_with_the_urls_host():
    """The operating system cannot resolve receiver.test: a delivery arriving proves the
    connection went to the address the check resolved, not to a second lookup."""
    outbound = Outbound.from_allow("127.0.0.1", Hosts({"receiver.test": ["127.0.0.1"]}))
    async with receiver() as (url, got), outbound.client() as http:
        port = urlsplit(url).port
        attempt = await deliver(http, "generic", f"http://receiver.test:{port}/hook", PAYLOAD)
    assert attempt.ok, attempt.error
    assert got.got[0].headers["host"] == f"receiver.test:{port}"


async def test_an_internal_receiver_allowed_by_name_is_reached():
    async with receiver() as (url, got), Outbound.from_allow("localhost").client() as http:
        port = urlsplit(url).port
        attempt = await deliver(http, "generic", f"http://localhost:{port}/hook", PAYLOAD)
    assert attempt.ok, attempt.error
    assert len(got.got) == 1


async def test_tls_checks_the_certificate_against_the_urls_host(tmp_path: Path):
    _, trusted = self_signed(tmp_path, "receiver.test")
    hosts = Hosts({"receiver.test": ["127.0.0.1"], "impostor.test": ["127.0.0.1"]})
    outbound = Outbound.from_allow("127.0.0.1", hosts)
    async with https_receiver(tmp_path) as (port, got), outbound.client(trusted) as http:
        good = await deliver(http, "generic", f"https://receiver.test:{port}/hook", PAYLOAD)
        assert good.ok, good.error
        # The same address under another name: the certificate does not name it.
        bad = await deliver(http, "generic", f"https://impostor.test:{port}/hook", PAYLOAD)
    assert not bad.ok and "CERTIFICATE_VERIFY_FAILED" in (bad.error or "")
    assert len(got.got) == 1


async def test_a_redirect_to_an_internal_address_is_not_followed(db_url, db, tmp_path):
    async with (
        api_under_test(db_url, db, tmp_path) as api,
        receiver() as (internal, behind),
        receiver((302, {"Location": internal})) as (url, got),
    ):
        made = await api.http.post(WEBHOOKS, headers=api.admin(), json=hook(url))
        result = (
            await api.http.post(f"{WEBHOOKS}/{made.json()['id']}/test", headers=api.admin())
        ).json()
    assert (result["ok"], result["statusCode"]) == (False, 302)
    assert len(got.got) == 1 and behind.got == []


# -- what a test send tells ---------------------------------------------------------------------


async def test_a_tenants_test_send_shows_the_status_but_never_the_body(db_url, db, tmp_path):
    async with api_under_test(db_url, db, tmp_path) as api, receiver(503, 503, 503) as (url, got):
        made = await api.http.post(WEBHOOKS, headers=api.scoped(), json=hook(url))
        test = f"{WEBHOOKS}/{made.json()['id']}/test"
        tenant = (await api.http.post(test, headers=api.scoped())).json()
        admin = (await api.http.post(test, headers=api.admin())).json()
        csrf = await sign_in(api.http, api.scoped_token)
        page = await api.http.post(
            f"/notifiers/{made.json()['id']}/test",
            data={"csrf_token": csrf},
            headers={"X-Requested-With": "ghapp-dashboard"},
        )
    assert (tenant["statusCode"], tenant["error"]) == (503, "HTTP 503 Service Unavailable")
    assert tenant["response"] is None
    assert '"status":503' in admin["response"]  # admins may read an excerpt
    shown = page.json()["result"]
    assert shown["status_code"] == 503 and shown["response"] == ""
    assert len(got.got) == 3


# -- logs ---------------------------------------------------------------------------------------


class Lines(logging.Handler):
    """Keeps the messages of the records it handles."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_httpx_request_lines_never_carry_a_notifiers_url():
    httpx_log, lines = logging.getLogger("httpx"), Lines()
    httpx_log.setLevel(logging.INFO)  # as a host application's logging might
    httpx_log.addHandler(lines)
    try:
        async with receiver() as (url, _), Outbound.from_allow("127.0.0.1").client() as http:
            assert (await deliver(http, "generic", url, PAYLOAD)).ok
    finally:
        httpx_log.removeHandler(lines)
    port = urlsplit(url).port
    assert lines.messages == [f'HTTP Request: POST http://127.0.0.1:{port}/**** "HTTP/1.1 200 OK"']


async def test_ghapps_logging_leaves_out_httpxs_request_lines():
    root, written = logging.getLogger(), io.StringIO()
    saved = root.level, root.handlers[:]
    logs.configure("debug", written)  # as `ghapp serve --log-level debug` does
    try:
        async with receiver() as (url, _), Outbound.from_allow("127.0.0.1").client() as http:
            assert (await deliver(http, "generic", url, PAYLOAD)).ok
            logging.getLogger("ghapp.test").debug("delivered")
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    assert '"msg": "delivered"' in written.getvalue()  # the stream was written to
    assert "HTTP Request" not in written.getvalue()


def test_the_log_check_finds_registered_and_recognisable_secrets():
    token = "ghapp_" + "A" * 43
    lines = [
        '{"msg": "sent to http://127.0.0.1:1234/hook"}',
        f'{{"msg": "created {token}"}}',
        '{"msg": "POST https://hooks.slack.com/services/T0/B0/abc"}',
        '{"msg": "POST https://hooks.slack.com/****"}',
        '{"msg": "nothing here"}',
    ]
    found = leaks(lines, {"http://127.0.0.1:1234/hook"})
    assert found == [
        f'{{"msg": "sent to {MASK}"}}',
        f'{{"msg": "created {MASK}"}}',
        f'{{"msg": "POST https://{MASK}"}}',
    ]


def test_a_run_whose_logs_carry_a_secret_fails(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent.parent))
    pytester.makepyfile(
        textwrap.dedent(
            """
            import logging

            from tests import secrets_in_logs

            def test_logs_a_secret_at_info():
                secrets_in_logs.register("hunter2-the-secret")
                logging.getLogger("ghapp.anything").info("the key is hunter2-the-secret")

            def test_logs_nothing_secret():
                logging.getLogger("ghapp.anything").info("nothing to see")
            """
        )
    )
    leaked = pytester.runpytest_subprocess("-p", "tests.secrets_in_logs", "-p", "no:cacheprovider")
    leaked.assert_outcomes(passed=2)  # every test passed, and still the run fails
    assert leaked.ret == pytest.ExitCode.TESTS_FAILED
    output = leaked.stdout.str()
    assert "secrets in logs" in output and "test_logs_a_secret_at_info" in output
    assert f"the key is {MASK}" in output and "hunter2-the-secret" not in output

    clean = pytester.runpytest_subprocess(
        "-p", "tests.secrets_in_logs", "-p", "no:cacheprovider", "-k", "nothing"
    )
    assert clean.ret == pytest.ExitCode.OK
