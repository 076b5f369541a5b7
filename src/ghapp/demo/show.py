"""What the demo prints: what was sent, the runs, and what ghapp did on GitHub — the 👀
reaction, the tracking comments edited in place (with their hidden markers), the refusals —
each checked, so that a behaviour that did not happen is named rather than left out.

Everything shown comes from the GitHub stand-in (its comments, reactions and the requests
ghapp made) or ghapp's database; comment text goes through :class:`rich.text.Text`, never
markup, and is wrapped at word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ghapp.db.models import Run, Session
from ghapp.standins.github import GitHubStandIn

CLIP_AT = 1200  # characters of a comment shown; the demo's are shorter
MARKER = re.compile(r"<!-- ghapp:[^>]*?-->")
JOB = re.compile(r"\*\*(.+?)\*\*")
EXPECTED_RUNS = [
    ("command", "completed"),
    ("command", "skipped"),
    ("event", "completed"),
    ("scheduled", "completed"),
]

HEADING = "What ghapp did on GitHub (issue #1 at the stand-in)"
REACTION = (
    "👀 reaction: @{login} ({permission} access) commented {text}; ghapp reacted 👀 at once "
    "(command accepted) and ran it."
)
EDITS = (
    "✏ edit in place: a session's tracking comment is posted when it starts and edited — the "
    "same comment — when it ends:"
)
TRACKING = "comment {id}, {job}: posted, then edited in place {edits}"
HIDDEN = (
    "  (an HTML comment GitHub does not show: how ghapp finds its comment again, so a "
    "retried session edits it rather than post a second)"
)
REFUSALS = "✋ refusals:"
REFUSED_COMMAND = (
    "@{login} ({permission} access) commented {text}: no 👀 and no session (run {run} "
    "skipped: {reason}); ghapp replied:"
)
REFUSED_DELIVERY = "{what}: HTTP {status}, {answer}"

WRONG_ANSWER = "{what}: HTTP {status} ({answer}), expected {expected}"
NO_REACTION = "@{login}'s {text} got no 👀 reaction"
REACTED_TO_REFUSED = "@{login}'s {text} got a reaction although the command was refused"
NO_TRACKING = "ghapp posted no tracking comment on issue #1"
NOT_EDITED = "ghapp's comment {id} was never edited in place; it still says {first}"
NO_REPLY = "@{login} was not told that {text} needs write access"
WRONG_RUNS = "the runs ended as: {got}; the demo expects: {expected}"


@dataclass(frozen=True)
class Sent:
    """A delivery the demo sent, and the answer."""

    what: str
    event: str
    status: int
    answer: str
    expected: int

    @property
    def ok(self) -> bool:
        return self.status == self.expected


@dataclass(frozen=True)
class Command:
    """A slash command someone typed in a comment on issue #1."""

    login: str
    permission: str
    text: str
    comment_id: int
    allowed: bool


@dataclass(frozen=True)
class Tracking:
    """A tracking comment ghapp posted, as first posted and as it is now."""

    comment_id: int
    first: str
    now: str
    edits: int


def sent_table(title: str, sent: Sequence[Sent]) -> Table:
    table = Table(title=title)
    for column in ("what", "event", "HTTP", "answer"):
        table.add_column(column)
    for item in sent:
        status = Text(str(item.status), style="green" if item.ok else "red")
        table.add_row(Text(item.what), Text(item.event), status, Text(item.answer))
    return table


def wrong_answers(sent: Iterable[Sent]) -> list[str]:
    return [
        WRONG_ANSWER.format(
            what=s.what, status=s.status, answer=s.answer or "no answer", expected=s.expected
        )
        for s in sent
        if not s.ok
    ]


def runs_table(runs: Sequence[Run], sessions: Sequence[Session]) -> Table:
    table = Table(title="Runs")
    for column in ("run", "trigger", "status", "sessions", "cost", "note"):
        table.add_column(column)
    for run in runs:
        note = (run.error or "").splitlines()[0] if run.error else ""
        table.add_row(
            str(run.id),
            run.trigger_type,
            run.status,
            str(sum(1 for s in sessions if s.run_id == run.id)),
            f"${run.cost_usd:.4f}",
            Text(clip(note, 200)),
        )
    return table


def wrong_runs(runs: Sequence[Run]) -> list[str]:
    got = sorted((r.trigger_type, r.status) for r in runs)
    if got == EXPECTED_RUNS:
        return []
    return [WRONG_RUNS.format(got=_pairs(got), expected=_pairs(EXPECTED_RUNS))]


def on_github(
    github: GitHubStandIn,
    repo: str,
    commands: Sequence[Command],
    runs: Sequence[Run],
    refused: Sequence[Sent],
) -> tuple[RenderableType, list[str]]:
    """What ghapp did on issue #1, and what it should have done and did not."""
    problems: list[str] = []
    parts: list[RenderableType] = [Text(HEADING, style="bold")]
    for command in (c for c in commands if c.allowed):
        parts.append(_reaction(github, command, problems))
    parts.append(_edits(github, repo, problems))
    parts.append(_refusals(github, repo, commands, runs, refused, problems))
    return Group(*parts), problems


def _reaction(github: GitHubStandIn, command: Command, problems: list[str]) -> RenderableType:
    reacted = [r["content"] for r in github.reactions_on(command.comment_id)]
    if "eyes" not in reacted:
        problems.append(NO_REACTION.format(login=command.login, text=_quoted(command.text)))
    return _pad(
        Text(
            REACTION.format(
                login=command.login, permission=command.permission, text=_quoted(command.text)
            )
        ),
        (1, 0, 0, 0),
    )


def _edits(github: GitHubStandIn, repo: str, problems: list[str]) -> RenderableType:
    tracking = tracking_comments(github, repo)
    if not tracking:
        problems.append(NO_TRACKING)
    parts: list[RenderableType] = [_pad(Text(EDITS), (1, 0, 0, 0))]
    for comment in tracking:
        if comment.edits == 0:
            problems.append(NOT_EDITED.format(id=comment.comment_id, first=_quoted(comment.first)))
        job = JOB.search(comment.first)
        title = TRACKING.format(
            id=comment.comment_id, job=job.group(1) if job else "?", edits=_times(comment.edits)
        )
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        grid.add_row("before", Text(clip(visible(comment.first))))
        grid.add_row("after", Text(clip(visible(comment.now))))
        marker = MARKER.search(comment.now)
        if marker:
            grid.add_row("hidden", Text.assemble(marker.group(), (HIDDEN, "dim")))
        parts.append(_pad(Group(Text(title), _pad(grid, (0, 0, 0, 2))), (0, 0, 0, 2)))
    return Group(*parts)


def _refusals(
    github: GitHubStandIn,
    repo: str,
    commands: Sequence[Command],
    runs: Sequence[Run],
    refused: Sequence[Sent],
    problems: list[str],
) -> RenderableType:
    lines: list[RenderableType] = [_pad(Text(REFUSALS), (1, 0, 0, 0))]
    comments = github.comments_on(repo, 1)
    for command in (c for c in commands if not c.allowed):
        text = _quoted(command.text)
        if github.reactions_on(command.comment_id):
            problems.append(REACTED_TO_REFUSED.format(login=command.login, text=text))
        reply = next(
            (c["body"] for c in comments if f"ghapp:refused={command.comment_id} " in c["body"]),
            None,
        )
        if reply is None:
            problems.append(NO_REPLY.format(login=command.login, text=text))
        skipped = next((r for r in runs if r.status == "skipped"), None)
        said = REFUSED_COMMAND.format(
            login=command.login,
            permission=command.permission,
            text=text,
            run=skipped.id if skipped else "?",
            reason=(skipped.error or "").strip() if skipped else "no run recorded",
        )
        lines.append(_bullet(Text(said)))
        if reply is not None:
            lines.append(_pad(Text(clip(visible(reply))), (0, 0, 0, 6)))
    for sent in refused:
        said = REFUSED_DELIVERY.format(what=sent.what, status=sent.status, answer=sent.answer)
        lines.append(_bullet(Text(said)))
    return Group(*lines)


def tracking_comments(github: GitHubStandIn, repo: str) -> list[Tracking]:
    """ghapp's tracking comments on issue #1: each as first posted (the stand-in recorded
    the request) and as it is now, with how many times it was edited."""
    posted = [
        r.json.get("body", "")
        for r in github.find_requests("POST", rf"(?i)^/repos/{re.escape(repo)}/issues/1/comments$")
        if r.status == 201 and isinstance(r.json, dict)
    ]
    found = []
    for comment in github.comments_on(repo, 1):
        marker = MARKER.search(comment["body"])
        if marker is None or "ghapp:session=" not in marker.group():
            continue
        first = next((body for body in posted if marker.group() in body), comment["body"])
        path = rf"(?i)^/repos/{re.escape(repo)}/issues/comments/{comment['id']}$"
        edits = [r for r in github.find_requests("PATCH", path) if r.status == 200]
        found.append(Tracking(int(comment["id"]), first, comment["body"], len(edits)))
    return found


def visible(body: str) -> str:
    """A comment as GitHub shows it: without ghapp's hidden markers."""
    return MARKER.sub("", body).strip()


def clip(text: str, limit: int = CLIP_AT) -> str:
    """``text`` whole, or cut at a word boundary before ``limit`` with a clear " …"."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    return (cut[:space] if space > 0 else cut).rstrip() + " …"


def problems_block(problems: Sequence[str]) -> RenderableType:
    heading = Text(f"ghapp demo: {len(problems)} thing(s) did not go as promised:", style="red")
    return Group(heading, *(_bullet(Text(p), mark="✗") for p in problems))


def print_wrapped(console: Console, renderable: RenderableType) -> None:
    """Printed at the console's width, words kept whole (the console soft-wraps its own
    one-line notes, so that a long path is never broken)."""
    console.print(renderable, soft_wrap=False)


def _pad(renderable: RenderableType, pad: tuple[int, int, int, int]) -> Padding:
    """Indented or spaced, without filling the rest of each line with spaces."""
    return Padding(renderable, pad, expand=False)


def _bullet(text: Text, mark: str = "-") -> RenderableType:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    grid.add_row(mark, text)
    return _pad(grid, (0, 0, 0, 2))


def _quoted(text: str) -> str:
    return f"“{text}”"


def _times(count: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(count, f"{count} times")


def _pairs(pairs: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{trigger} {status}" for trigger, status in pairs)
