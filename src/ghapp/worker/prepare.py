"""What a run works on, made ready before any session starts: the repository and its
installation, the permission check of a slash command or a mention (and of whoever
assigned an issue to the app), the ``paths:`` condition of a
pull-request trigger (:mod:`ghapp.worker.paths`), the items, and each item's prompt.

The run's repository is the run's own (``run.repo_id``), never its job's default: an
installation-wide job's run works on the repository it was made for, and so do the items
it searches, the items it remembers as done and the report issue it keeps.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, cast

from gidgethub.abc import GitHubAPI
from sqlalchemy import or_, select
from sqlmodel import col

from ghapp import prompts, repo_commands
from ghapp.clock import Clock
from ghapp.commands import render_prompt
from ghapp.db import Database
from ghapp.db.models import Repository, Run, Session, SessionStatus, TriggerType
from ghapp.github.app import GitHubApp
from ghapp.repo_commands import Command
from ghapp.settings import Settings
from ghapp.tiers import READERS, WRITERS
from ghapp.worker import followup
from ghapp.worker.assignment import assigner_refusal
from ghapp.worker.authorize import ALLOWED, REFUSED_REPLY, Authorizer, reply_once
from ghapp.worker.checkout import checkout, head_commit
from ghapp.worker.followup import FollowUp
from ghapp.worker.items import search_items
from ghapp.worker.paths import paths_refusal
from ghapp.worker.rows import JobRow, RepoRow, RunRow
from ghapp.worker.trust import Trust, trust_of

log = logging.getLogger("ghapp.worker")

RECENT = timedelta(days=7)  # items a job processed this recently are not redone
# Runs a person asked for in a comment: their permission is checked, as a command's.
ASKED = frozenset({TriggerType.command.value, TriggerType.mention.value})


@dataclass(frozen=True)
class Item:
    kind: str  # issue | pr | codebase | custom
    number: int | None
    title: str
    data: dict[str, Any] | None  # the issue/PR as GitHub or the event described it
    trust: Trust = field(default_factory=Trust)  # who wrote it, where its head lives

    @property
    def fork(self) -> bool:
        return not self.trust.head

    @property
    def label(self) -> str:
        """``issue #12``, or ``codebase`` (how a run's error names the item)."""
        return f"{self.kind} #{self.number}" if self.number else self.kind


@dataclass(frozen=True)
class Prepared:
    """A run ready for its sessions, or the polite refusal of a slash command."""

    run: RunRow
    job: JobRow
    repo: RepoRow
    installation_id: int
    gh: GitHubAPI
    items: list[Item] = field(default_factory=list)
    found: dict[str, int] = field(default_factory=dict)  # items_found, items_skipped
    refusal: str | None = None
    follow_up: FollowUp | None = None  # the session this run continues (ghapp.worker.followup)


async def _paths(gh: GitHubAPI, run: RunRow, repo: str) -> str | None:
    """A PR event's trigger limited to ``paths:`` runs only if the PR changes one of them."""
    globs = run.trigger_detail.get("paths") if run.trigger_type == TriggerType.event.value else None
    item = run.item or {}
    if not globs or item.get("item_kind") != "pr":
        return None
    return await paths_refusal(gh, repo, int(item["number"]), globs)


@dataclass(frozen=True)
class Workspace:
    checkout: Path
    base_commit: str  # read before the session can change .git
    token: str  # the installation's, which made the checkout and publishes from it


class Preparation:
    def __init__(
        self, db: Database, github: GitHubApp, authorizer: Authorizer, clock: Clock
    ) -> None:
        self.db = db
        self.github = github
        self.authorizer = authorizer
        self.clock = clock

    async def prepare(self, run: RunRow, job: JobRow) -> Prepared:
        repo = await self._repository(run_repository(run, job))
        installation_id = run.installation_id or repo.installation_id
        if installation_id is None:
            installation_id = await self.github.installation_of(repo.full_name)
        gh = await self.github.for_installation(installation_id)
        refusal, read_only = await self._authorize(gh, run, job, repo.full_name)
        if refusal is None:
            refusal = await _paths(gh, run, repo.full_name)
        if refusal is not None:
            return Prepared(run, job, repo, installation_id, gh, refusal=refusal)
        items, found = await self._items(gh, run, job, repo)
        if read_only:  # a reader asked, or the command is open to readers (ghapp.tiers)
            items = [dataclasses.replace(i, trust=read_only_trust(i.trust)) for i in items]
        if run.trigger_type == TriggerType.follow_up.value:
            return await self._follow_up(gh, run, job, repo, installation_id, items, found)
        return Prepared(run, job, repo, installation_id, gh, items, found)

    async def _follow_up(
        self,
        gh: GitHubAPI,
        run: RunRow,
        job: JobRow,
        repo: RepoRow,
        installation_id: int,
        items: list[Item],
        found: dict[str, int],
    ) -> Prepared:
        """A follow-up's item, refused on a fork's head; on ghapp's own pull request the
        session may write (its author is the app, the person asking a writer)."""
        [item] = items
        detail = run.trigger_detail
        if item.kind == "pr" and not item.trust.head:
            login = str(detail.get("requested_by") or "")
            reply = followup.FORK_REPLY.format(login=login)
            await reply_once(gh, repo.full_name, int(item.number or 0), detail["comment_id"], reply)
            refusal = f"a follow-up on a fork's pull request ({item.trust.reason})"
            return Prepared(run, job, repo, installation_id, gh, refusal=refusal)
        follow = await followup.prepare_follow_up(
            self.db, gh, repo.full_name, detail, run.item or {}
        )
        parent_pr = follow.parent.pr_number if follow.parent is not None else None
        if item.kind == "pr" and item.number is not None and item.number == parent_pr:
            item = dataclasses.replace(item, trust=dataclasses.replace(item.trust, author=True))
        return Prepared(run, job, repo, installation_id, gh, [item], found, follow_up=follow)

    async def _repository(self, repo_id: int | None) -> RepoRow:
        if repo_id is None:
            raise LookupError("the run names no repository (an installation-wide job's run)")
        async with self.db.read() as conn:
            repo = (
                await conn.execute(select(Repository).where(col(Repository.id) == repo_id))
            ).one_or_none()
        if repo is None:
            raise LookupError(f"repository {repo_id} is not known")
        return RepoRow.of(repo)

    async def _authorize(
        self, gh: GitHubAPI, run: RunRow, job: JobRow, repo: str
    ) -> tuple[str | None, bool]:
        """A slash command runs only for those who may ask for it (refused: a polite reply).
        Returns (why refused or None, whether its sessions must be read-only)."""
        open_to = await self._open_to(gh, run, job, repo)
        if run.trigger_type == TriggerType.assignment.value:
            return await self._assigned(gh, run, repo), open_to == READERS
        follow_up = run.trigger_type == TriggerType.follow_up.value
        if run.trigger_type not in ASKED and not follow_up:
            return None, open_to == READERS
        detail, item = run.trigger_detail, run.item or {}
        decision = await self.authorizer.decide(
            gh,
            repo=repo,
            issue_number=item["number"],
            comment_id=detail["comment_id"],
            login=detail["requested_by"],
            command=detail.get("command") or "follow-up",
            event=item.get("event") or "issue_comment",
            open_to=WRITERS if follow_up else open_to,  # a follow-up may write: writers only
            refused=followup.REFUSED_REPLY if follow_up else REFUSED_REPLY,
        )
        read_only = decision.reader or open_to == READERS
        return (None, read_only) if decision.allowed else (decision.reason, read_only)

    async def _assigned(self, gh: GitHubAPI, run: RunRow, repo: str) -> str | None:
        """An issue assigned to the app runs only if whoever assigned it may write."""
        login = str(run.trigger_detail.get("requested_by") or "")
        number = int((run.item or {}).get("number") or 0)
        return await assigner_refusal(gh, self.authorizer, repo, number, login, run.id)

    async def _open_to(self, gh: GitHubAPI, run: RunRow, job: JobRow, repo: str) -> str:
        """The trust tier of the job's command. For a reader's command it is read from the
        repository's default branch (its own command overrides a built-in); otherwise the
        built-in's, and a repository command's own tier is applied from the checkout
        (``trust.policy``). A job's own prompt is for writers only."""
        if not job.command_id:
            return WRITERS
        builtin = repo_commands.builtin_catalog().commands.get(job.command_id)
        tier = builtin.open_to if builtin is not None else WRITERS
        login = run.trigger_detail.get("requested_by")
        if run.trigger_type not in ASKED or not login:
            return tier
        if await self.authorizer.permission(gh, repo, str(login)) in ALLOWED:
            return tier  # a writer may run it anyway: no need to read the catalog
        command = (await repo_commands.from_github(gh, repo)).commands.get(job.command_id)
        return command.open_to if command is not None else WRITERS

    async def _items(
        self, gh: GitHubAPI, run: RunRow, job: JobRow, repository: RepoRow
    ) -> tuple[list[Item], dict[str, int]]:
        """The event's issue or PR; one item for codebase and custom jobs; else the job's
        filter query, searched on GitHub."""
        repo = repository.full_name
        if run.item:
            event = run.item
            item = await self._item(gh, repo, event["item_kind"], event, event.get("author_login"))
            return [item], {"items_found": 1}
        if job.target_type in ("codebase", "custom"):
            return [Item(job.target_type, None, job.name, None)], {"items_found": 1}
        # issues or prs (codebase and custom are done above; the search refuses the rest)
        target = cast(Literal["issues", "prs"], job.target_type)
        found = await search_items(
            gh,
            repo=repo,
            target=target,
            filter_query=job.filter_query,
            max_items=job.max_items,
            now=self.clock.now(),
            recently_processed=await self._recently_processed(job, repository.id),
        )
        kind = "pr" if job.target_type == "prs" else "issue"
        items = [
            await self._item(gh, repo, kind, data, (data.get("user") or {}).get("login"))
            for data in found.items
        ]
        return items, {"items_found": found.found, "items_skipped": found.skipped}

    async def _item(
        self, gh: GitHubAPI, repo: str, kind: str, data: dict[str, Any], author: str | None
    ) -> Item:
        """An item with its trust asked of GitHub: where a PR's head lives (even when the
        event was a comment), and whether its author may write to the repository."""
        number = data["number"]
        trust, _pull = await trust_of(gh, self.authorizer, repo, kind, number, author)
        if not trust.writes:
            log.info("item is untrusted", extra={"number": number, "why": trust.reason})
        return Item(kind, number, data.get("title", ""), data, trust)

    async def _recently_processed(self, job: JobRow, repo_id: int) -> set[int]:
        """Numbers this job finished recently in this repository (an installation-wide
        job's issue #5 elsewhere is another issue)."""
        since = self.clock.now() - RECENT
        same_repo = col(Run.repo_id) == repo_id
        if only_repository(job) == repo_id:  # its runs that name none were on this one
            same_repo = or_(same_repo, col(Run.repo_id).is_(None))
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(col(Session.item_number))
                .join(Run, col(Run.id) == col(Session.run_id))
                .where(
                    col(Run.job_id) == job.id,
                    same_repo,
                    col(Session.status) == SessionStatus.completed.value,
                    col(Session.completed_at) >= since,
                )
            )
            return {number for (number,) in rows if number is not None}


def run_repository(run: Any, job: Any) -> int | None:
    """The repository a run works on: its own. A job's ``repo_id`` only stands in for a
    run that names none (rows from before runs did) when it is the job's only one."""
    if run.repo_id is not None:
        return int(run.repo_id)
    return only_repository(job)


def only_repository(job: Any) -> int | None:
    return job.repo_id if job.repo_selection == "one" else None


def prompt_problem(job: JobRow) -> str | None:
    """Why the job's own prompt cannot be rendered (a job saved before prompts were
    checked when saved), or None."""
    if job.command_id or not job.custom_prompt:
        return None
    try:
        prompts.parse(job.custom_prompt)
    except prompts.PromptError as exc:
        return f"custom_prompt: {exc}"
    return None


def prompt_for(run: RunRow, job: JobRow, item: Item, repo: RepoRow) -> tuple[str, str | None]:
    """(the session's prompt, None), or ("", why it cannot be made for this item)."""
    try:
        prompt = render_prompt(job.command_id, job.custom_prompt, item.data, run.arguments, repo)
    except prompts.PromptError as exc:  # this item's values make it too long
        return "", f"custom_prompt: {exc}"
    return prompt, None


@asynccontextmanager
async def workspace(
    settings: Settings,
    repo: RepoRow,
    token: str,
    item: Item,
    parent: Path | None,
    branch: str | None = None,
) -> AsyncIterator[Workspace]:
    """A fresh checkout for one session: the PR's head for a PR, else the default branch;
    ``branch`` (a follow-up's: where its earlier session published) instead of either."""
    async with checkout(
        settings.git_url,
        repo.full_name,
        token,
        ref=branch,
        pull_number=item.number if item.kind == "pr" and branch is None else None,
        parent=parent,
        # A fork's .claude/, .mcp.json and CLAUDE.md never reach a session: the default
        # branch's replace them (and repository commands come from there).
        config_from=None if item.trust.head else repo.default_branch,
    ) as work:
        yield Workspace(work, await head_commit(work), token)


def read_only_trust(trust: Trust) -> Trust:
    reason = "; ".join(filter(None, [trust.reason, "read-only: open to readers"]))
    return dataclasses.replace(trust, read_only=True, reason=reason)


def repository_command(job: JobRow, work: Path) -> Command | None:
    """The repository's own command of this id, if it has one (it overrides a built-in)."""
    if not job.command_id or job.runner != "claude":
        return None
    command = repo_commands.from_checkout(work).commands.get(job.command_id)
    if command is None or command.source != "repository":
        return None
    return command
