"""Reporting back on the issue or PR : one tracking comment per session.

The comment is created when the session starts and edited in place with the result or a
clear failure. It carries a hidden marker, ``<!-- ghapp:session=ID -->``: before creating
one, the item's comments are searched for it, so a retried or recovered session edits the
same comment and never posts a duplicate. GitHub refuses comments over 65,536 characters;
longer results are cut, with a link to the full text in the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from gidgethub import GitHubBroken
from gidgethub.abc import GitHubAPI

# A create that failed this way may still have happened (see ghapp.github.transport).
MAYBE_APPLIED = (GitHubBroken, httpx.TransportError)
GITHUB_COMMENT_LIMIT = 65_536
MARKER = "<!-- ghapp:session={session_id} -->"
WORKING = "⏳ **{job}** is working on this. [Follow the run]({run_url})."
DONE = "✅ **{job}** finished.\n\n{result}\n\n<sub>{facts} · [run]({run_url})</sub>"
FAILED = "❌ **{job}** did not finish: {error}\n\n<sub>{facts} · [run]({run_url})</sub>"
CUT = "\n\n…\n\n*The result was too long for a GitHub comment; [read all of it]({run_url}).*"


@dataclass(frozen=True)
class Posted:
    comment_id: int
    url: str
    reused: bool


def marker(session_id: int) -> str:
    return MARKER.format(session_id=session_id)


async def find_comment(gh: GitHubAPI, repo: str, number: int, session_id: int) -> dict | None:
    wanted = marker(session_id)
    async for comment in gh.getiter(f"/repos/{repo}/issues/{number}/comments?per_page=100"):
        if wanted in (comment.get("body") or ""):
            return comment
    return None


async def start_comment(
    gh: GitHubAPI, repo: str, number: int, session_id: int, *, job: str, run_url: str
) -> Posted:
    """The tracking comment: reuse the session's own if it exists, else create it."""
    existing = await find_comment(gh, repo, number, session_id)
    if existing is not None:
        return Posted(int(existing["id"]), existing["html_url"], reused=True)
    body = with_marker(WORKING.format(job=job, run_url=run_url), session_id)
    try:
        created = await gh.post(f"/repos/{repo}/issues/{number}/comments", data={"body": body})
    except MAYBE_APPLIED:
        # GitHub (or a gateway) may have posted it and failed to say so: look before any
        # second try. Not there → the error stands, and the run's retry posts it once.
        existing = await find_comment(gh, repo, number, session_id)
        if existing is None:
            raise
        return Posted(int(existing["id"]), existing["html_url"], reused=True)
    return Posted(int(created["id"]), created["html_url"], reused=False)


async def finish_comment(
    gh: GitHubAPI, repo: str, comment_id: int, session_id: int, text: str, run_url: str = ""
) -> None:
    body = with_marker(text, session_id, run_url)
    await gh.patch(f"/repos/{repo}/issues/comments/{comment_id}", data={"body": body})


def result_text(
    job: str,
    *,
    ok: bool,
    result: str | None,
    error: str | None,
    facts: str,
    run_url: str,
) -> str:
    if not ok:
        return FAILED.format(
            job=job, error=(error or "unknown error").strip(), facts=facts, run_url=run_url
        )
    return DONE.format(job=job, result=(result or "").strip(), facts=facts, run_url=run_url)


def with_marker(text: str, session_id: int, run_url: str = "") -> str:
    """``text`` plus the marker, cut so the whole fits in one GitHub comment."""
    tail = "\n\n" + marker(session_id)
    room = GITHUB_COMMENT_LIMIT - len(tail)
    if len(text) > room:
        cut = CUT.format(run_url=run_url or "#")
        text = text[: room - len(cut)] + cut
    return text + tail


def facts_line(*, turns: int, cost_usd: float, duration_ms: int) -> str:
    return f"{turns} turns · ${cost_usd:.4f} · {duration_ms / 1000:.1f} s"


REPORT_MARKER = "<!-- ghapp:report-job={job_id} -->"


async def publish_report(
    gh: GitHubAPI, repo: str, job_id: int, title: str, text: str, number: int | None
) -> int:
    """Create the job's report issue, or update the one it already has; return its number."""
    body = with_marker(text, 0).replace(marker(0), REPORT_MARKER.format(job_id=job_id))
    if number is not None:
        await gh.patch(f"/repos/{repo}/issues/{number}", data={"title": title, "body": body})
        return number
    marker_text = REPORT_MARKER.format(job_id=job_id)
    try:
        created = await gh.post(f"/repos/{repo}/issues", data={"title": title, "body": body})
    except MAYBE_APPLIED:  # maybe created: it would be among the newest issues
        found = await _recent_issue_with(gh, repo, marker_text)
        if found is None:
            raise
        return found
    return int(created["number"])


async def _recent_issue_with(gh: GitHubAPI, repo: str, text: str) -> int | None:
    recent = await gh.getitem(
        f"/repos/{repo}/issues?state=all&sort=created&direction=desc&per_page=30"
    )
    for issue in recent:
        if text in (issue.get("body") or ""):
            return int(issue["number"])
    return None
