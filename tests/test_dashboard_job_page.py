"""The dashboard's job page, the overview's run strips and warnings, and the error pages a
browser gets for addresses no route answers — over HTTP (httpx's ASGI transport), on
SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from ghapp.dashboard.core import NO_PAGE, NOT_FOUND, WRONG_METHOD
from ghapp.dashboard.history import OVERDUE, OVERVIEW_CELLS
from tests.api_support import ADMIN_TOKEN, REPO_A, REPO_B, add_run, api_under_test
from tests.support import sign_in

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
async def dash(db_url, db, tmp_path) -> AsyncIterator[Any]:
    async with api_under_test(db_url, db, tmp_path) as under_test:
        yield under_test


async def a_job(dash: Any, **values: Any) -> Any:
    spec = {"name": "Weekday triage", "repo_id": REPO_A, "command_id": "issue/triage", **values}
    return await dash.state.jobs.create(spec, actor="test")


def strip_of(html: str, strip_id: str = "job-strip") -> list[tuple[str, str, str]]:
    """(run id, status class, title) of each cell of a strip, left to right."""
    block = re.search(rf'<ol class="strip[^"]*" id="{strip_id}".*?</ol>', html, re.S)
    assert block, "no strip"
    return re.findall(r'<a class="cell (\w+)" href="/runs/(\d+)" title="([^"]*)"', block.group(0))


async def test_the_job_page_says_what_the_job_does(dash) -> None:
    hook = await dash.state.notifiers.create(
        {"name": "ops <hook>", "type": "generic", "url": "http://127.0.0.1:9/a"}, actor="test"
    )
    job = await a_job(
        dash,
        name="Triage <script>",
        cron_expression="0 9 * * 1-5",
        timezone="Europe/Berlin",
        model="claude-sonnet-4-5",
        max_turns=12,
        max_budget_usd=1.5,
        timeout_seconds=600,
        allowed_tools=["Read", "Grep"],
        notifier_ids=[hook.id],
        notify_on_success=True,
    )
    now = dash.clock.now()
    done = [
        await add_run(
            dash,
            job.id,
            status,
            started_at=now - timedelta(minutes=50 - i),
            completed_at=now - timedelta(minutes=49 - i),
            duration_ms=60_000 + i * 1000,
            cost_usd=0.01 * (i + 1),
        )
        for i, status in enumerate(["completed", "failed", "completed"])
    ]
    await sign_in(dash.http, ADMIN_TOKEN)
    page = await dash.http.get(f"/jobs/{job.id}")
    assert page.status_code == 200
    text = page.text
    assert "Triage &lt;script&gt;" in text and "<script>" not in text.split("</head>")[1]
    sentence = re.search(r'<p class="lede" id="job-sentence">([^<]*)</p>', text)
    assert sentence and sentence.group(1) == (
        "Runs issue/triage on issues in Codertocat/Hello-World, at 09:00, Monday through "
        "Friday (Europe/Berlin). It comments its result on the issue or pull request and "
        "notifies when a run fails or succeeds."
    )
    # Now is Monday 08:00 UTC = 09:00 in Berlin: the next five times, exact, on its clock.
    upcoming = re.findall(
        r'<time datetime="([^"]+)" title="([^"]+)" data-fixed>([^<]+)</time>', text
    )
    assert [shown for _, _, shown in upcoming] == [
        f"{day} 2026-03-0{n} 09:00 CET"
        for day, n in (("Tue", 3), ("Wed", 4), ("Thu", 5), ("Fri", 6), ("Mon", 9))
    ]
    assert upcoming[0][:2] == ("2026-03-03T08:00:00+00:00", "2026-03-03 08:00:00 UTC")
    for fact in (
        "<dd>claude-sonnet-4-5</dd>",
        "<dd>12</dd>",
        "<dd>$1.50 a session</dd>",
        "<dd>10 minutes</dd>",
        "<code>Read</code> <code>Grep</code>",
        f'<a href="/notifiers/{hook.id}/edit">ops &lt;hook&gt;</a>',
    ):
        assert fact in text, fact
    # The strip: oldest left, each cell its run, status and exact time.
    cells = strip_of(text)
    assert [(css, int(run)) for css, run, _ in cells] == [
        ("ok", done[0]),
        ("bad", done[1]),
        ("ok", done[2]),
    ]
    assert cells[1][2] == f"#{done[1]} failed · 2026-03-02 07:12:00 UTC (48 minutes ago)"
    # Trends: one bar per finished run, the latest figures in words.
    assert "Cost of the last 3 finished runs: latest $0.03, $0.01 to $0.03" in text
    assert "Duration of the last 3 finished runs: latest 1 min 2 s" in text
    assert text.count("<rect ") == 6
    # Actions: Run now first (primary), Pause (a scheduled job), Edit, Delete.
    actions = re.search(r'<div class="actions job-actions">(.*?)</div>', text, re.S)
    assert actions
    ids = re.findall(r'id="(run-now|pause|resume|edit|delete)"', actions.group(1))
    assert ids == ["run-now", "pause", "edit", "delete"]
    assert 'id="run-now">Run now</button>' in actions.group(1)  # no class: the green one


async def test_manual_and_config_jobs_offer_only_what_applies(dash) -> None:
    manual = await a_job(dash, name="By hand")
    await sign_in(dash.http, ADMIN_TOKEN)
    page = await dash.http.get(f"/jobs/{manual.id}")
    assert 'id="run-now"' in page.text and 'id="pause"' not in page.text
    assert "only when someone presses “Run now”" in page.text
    assert 'id="no-runs"' in page.text
    overview = await dash.http.get("/")
    row = re.search(rf'<tr id="job-{manual.id}".*?</tr>', overview.text, re.S)
    assert row and "Pause" not in row.group(0) and f'id="run-{manual.id}"' in row.group(0)
    assert f'<a href="/jobs/{manual.id}" class="job-name"' in row.group(0)


async def test_another_tenant_s_job_page_is_not_found(dash) -> None:
    mine = await a_job(dash, name="Mine", repo_id=REPO_B)
    theirs = await a_job(dash, name="Theirs", repo_id=REPO_A)
    await sign_in(dash.http, dash.scoped_token)
    assert (await dash.http.get(f"/jobs/{mine.id}")).status_code == 200
    for path in (f"/jobs/{theirs.id}", "/jobs/987654", f"/jobs/{theirs.id}?fragment=live"):
        answer = await dash.http.get(path)
        assert answer.status_code == 404, path
        assert NOT_FOUND in answer.text and "Theirs" not in answer.text, path


async def test_overview_strips_and_overdue_runs(dash) -> None:
    job = await a_job(dash, cron_expression="0 9 * * *", timeout_seconds=900)
    now = dash.clock.now()
    ids = [
        await add_run(dash, job.id, "completed", completed_at=now - timedelta(hours=12 - i))
        for i in range(12)
    ]
    stuck = await add_run(dash, job.id, "running", started_at=now - timedelta(minutes=17))
    fine = await add_run(dash, job.id, "running", started_at=now - timedelta(minutes=14))
    await sign_in(dash.http, ADMIN_TOKEN)
    overview = (await dash.http.get("/")).text
    row = re.search(rf'<tr id="job-{job.id}".*?</tr>', overview, re.S)
    assert row
    strip = re.search(
        r'<span class="strip" role="img" title="([^"]*)"[^>]*>(.*?)</span>', row.group(0)
    )
    assert strip
    assert (
        strip.group(1)
        == f"Last {OVERVIEW_CELLS} runs, oldest first: 8 succeeded, 0 failed, 2 other"
    )
    assert re.findall(r"<i class=(\w+)></i>", strip.group(2)) == ["ok"] * 8 + ["busy"] * 2
    assert f'<a href="/runs/{fine}"><span class="badge busy">running</span></a>' in row.group(0)
    assert len(ids) == 12  # the two oldest are left out
    # Only "Run now" acts from the row: the rest is on the job's page.
    assert re.findall(r"<button[^>]*>([^<]+)</button>", row.group(0)) == ["Run now"]
    # The next run: relative, and exact on the job's clock.
    assert '<small class="exact">Mon 2026-03-02 09:00 UTC</small>' in row.group(0)
    warning = OVERDUE.format(
        run=stuck, job="Weekday triage", running="17 min 0 s", timeout="15 minutes"
    )
    assert warning in html.unescape(overview)
    assert f"Run #{fine} " not in overview
    page = await dash.http.get(f"/jobs/{job.id}")
    assert warning in html.unescape(page.text)
    run_page = await dash.http.get(f"/runs/{stuck}")
    assert 'id="run-overdue"' in run_page.text and warning in html.unescape(run_page.text)
    assert 'id="run-overdue"' not in (await dash.http.get(f"/runs/{fine}")).text


async def test_a_browser_gets_pages_for_unknown_addresses_and_methods(dash) -> None:
    job = await a_job(dash)
    await sign_in(dash.http, ADMIN_TOKEN)
    wrong = await dash.http.get(f"/jobs/{job.id}/run", headers=HTML)
    assert wrong.status_code == 405 and wrong.headers["content-type"].startswith("text/html")
    assert WRONG_METHOD.format(method="GET") in wrong.text
    assert "POST" in wrong.headers["allow"]
    assert 'href="/runs"' in wrong.text  # signed in: the navigation is there
    missing = await dash.http.get("/no/such/page", headers=HTML)
    assert missing.status_code == 404 and NO_PAGE in missing.text
    assert missing.headers["content-security-policy"].startswith("default-src 'self'")
    # Programs keep their JSON.
    api = await dash.http.get("/api/no-such-thing", headers=HTML)
    assert api.status_code == 404 and api.json() == {"error": "Not Found"}
    plain = await dash.http.get("/no/such/page", headers={"Accept": "application/json"})
    assert plain.json() == {"error": "Not Found"}
    # Signed out, the page still is one, without the navigation.
    dash.http.cookies.clear()
    anonymous = await dash.http.get("/no/such/page", headers=HTML)
    assert anonymous.status_code == 404 and NO_PAGE in anonymous.text
    assert 'href="/runs"' not in anonymous.text


async def test_job_names_lead_to_the_job_page(dash) -> None:
    job = await a_job(dash)
    run_id = await dash.state.jobs.run_now(job.id, actor="test")
    await sign_in(dash.http, ADMIN_TOKEN)
    link = f'<a href="/jobs/{job.id}">Weekday triage</a>'
    assert link in (await dash.http.get("/runs")).text
    assert link in (await dash.http.get(f"/runs/{run_id}")).text
    assert link in (await dash.http.get(f"/runs?job={job.id}")).text
    fragment = await dash.http.get(f"/jobs/{job.id}", params={"fragment": "live"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert [int(run) for _, run, _ in strip_of(fragment.text)] == [run_id]


async def test_a_server_without_the_app_says_how_to_fix_it(dash) -> None:
    # make_settings sets no GHAPP_APP_ID: every page says runs cannot start, and the fix.
    await sign_in(dash.http, ADMIN_TOKEN)
    page = (await dash.http.get("/")).text
    banner = re.search(
        r'<div class="setup-warning" role="alert" id="setup-warning">(.*?)</div>', page, re.S
    )
    assert banner
    assert "<strong>Runs cannot start:</strong> the GitHub App is not configured" in banner.group(1)
    assert "<code>ghapp setup</code> registers an app" in banner.group(1)
    assert "To fix it: run <code>ghapp setup</code> where the server runs" in banner.group(1)


async def test_an_installation_wide_job_s_page(dash) -> None:
    job = await a_job(
        dash,
        name="Everywhere",
        repo_id=None,
        repo_selection="all",
        installation_id=957387,
        interval_minutes=90,
    )
    await sign_in(dash.http, ADMIN_TOKEN)
    page = await dash.http.get(f"/jobs/{job.id}")
    assert page.status_code == 200
    assert "in every repository of Codertocat, every 90 minutes." in page.text
    assert "<dd>Every 90 minutes</dd>" in page.text
    assert len(re.findall(r"<time [^>]*data-fixed>", page.text)) == 5
    # A token limited to repositories does not see it, as the API does not.
    dash.http.cookies.clear()
    await sign_in(dash.http, dash.scoped_token)
    assert (await dash.http.get(f"/jobs/{job.id}")).status_code == 404
