"""Which jobs does an event, a slash command, a mention or an assignment start? Answered
from memory.

Matching happens on the webhook hot path, inside the delivery's transaction budget, so the
active jobs with event, command, mention or assignment triggers are kept in memory, with
the repository → installation map and the app's slug (:attr:`JobIndex.app_slug`, which
mentions and assignments match; ``ghapp.app_identity``). The index reloads when this
process changes a job (invalidated at once) and when the database's jobs version moved
(checked at most every ``refresh_every`` seconds, and immediately when woken by
``LISTEN/NOTIFY`` on PostgreSQL); the learnt slug is read again at each of those checks.
"""

from __future__ import annotations

import fnmatch
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from ghapp.app_identity import known_app_slug
from ghapp.db import Database
from ghapp.db.models import Job, JobStatus, Repository
from ghapp.jobs.service import jobs_version
from ghapp.jobs.spec import EventTrigger
from ghapp.triggers.commands import (
    CommandTrigger,
    best_matches,
    parse_command_trigger,
    parse_commands,
)
from ghapp.triggers.mentions import find_mention, is_app_login
from ghapp.webhooks.normalize import ItemEvent


@dataclass(frozen=True)
class IndexedJob:
    id: int
    repo_id: int | None
    installation_id: int | None
    repo_selection: str
    repo_ids: frozenset[int]
    events: tuple[EventTrigger, ...]
    commands: tuple[CommandTrigger, ...]
    concurrency_policy: str = "skip"  # what a new push to a PR does to its older runs
    mention: bool = False  # runs on a person's @<app-slug> in a comment
    assignment: bool = False  # runs on an issue assigned to the app's bot user

    def covers(self, repo_id: int, installation_id: int | None) -> bool:
        if self.repo_selection == "one":
            return self.repo_id == repo_id
        if installation_id is None or installation_id != self.installation_id:
            return False
        return self.repo_selection == "all" or repo_id in self.repo_ids


@dataclass(frozen=True)
class CommandMatch:
    job: IndexedJob
    command: str  # as typed, e.g. "/review security"
    args: str


class JobIndex:
    def __init__(
        self, db: Database, refresh_every: float = 1.0, app_slug: str | None = None
    ) -> None:
        self.db = db
        self.refresh_every = refresh_every
        self.configured_slug = app_slug  # GHAPP_APP_SLUG: wins over the one learnt
        self._learnt_slug: str | None = None
        self._version: int | None = None
        self._checked = 0.0
        self._stale = True
        self._jobs: list[IndexedJob] = []
        self._by_repo: dict[int, list[IndexedJob]] = defaultdict(list)
        self._by_installation: dict[int, list[IndexedJob]] = defaultdict(list)
        self._installation_of: dict[int, int] = {}

    def invalidate(self) -> None:
        self._stale = True

    @property
    def app_slug(self) -> str | None:
        """The app's slug (``ghapp.app_identity``), as of the last refresh; None: unknown,
        so nothing mentions the app and nothing is assigned to it."""
        return self.configured_slug or self._learnt_slug

    async def ensure_fresh(self) -> None:
        due = time.monotonic() - self._checked >= self.refresh_every
        if not (self._stale or due):
            return
        async with self.db.read() as conn:
            version = await jobs_version(conn)
            if self._stale or version != self._version:
                await self._load(conn)
            self._version = version
            if not self.configured_slug:  # learnt by the installation sync, at any time
                self._learnt_slug = await known_app_slug(conn)
        self._stale = False
        self._checked = time.monotonic()

    async def _load(self, conn: Any) -> None:
        rows = await conn.execute(select(Job).where(col(Job.status) == JobStatus.active.value))
        jobs = [_indexed(row) for row in rows if _triggered_by_github(row)]
        repos = await conn.execute(select(col(Repository.id), col(Repository.installation_id)))
        self._installation_of = {repo_id: inst for repo_id, inst in repos if inst is not None}
        self._jobs = jobs
        self._by_repo = defaultdict(list)
        self._by_installation = defaultdict(list)
        for job in jobs:
            if job.repo_selection == "one" and job.repo_id is not None:
                self._by_repo[job.repo_id].append(job)
            elif job.installation_id is not None:
                self._by_installation[job.installation_id].append(job)

    def installation_of(self, item: ItemEvent) -> int | None:
        return item.installation_id or self._installation_of.get(item.repo_id)

    def candidates(self, item: ItemEvent) -> list[IndexedJob]:
        installation_id = self.installation_of(item)
        jobs = list(self._by_repo.get(item.repo_id, ()))
        if installation_id is not None:
            jobs += [
                job
                for job in self._by_installation.get(installation_id, ())
                if job.covers(item.repo_id, installation_id)
            ]
        return jobs

    def event_matches(self, item: ItemEvent) -> list[tuple[IndexedJob, EventTrigger]]:
        """Each job at most once, with the first of its triggers that matches."""
        matched = []
        for job in self.candidates(item):
            trigger = next((t for t in job.events if event_matches(t, item)), None)
            if trigger is not None:
                matched.append((job, trigger))
        return matched

    def command_matches(self, item: ItemEvent) -> list[CommandMatch]:
        """Slash commands in a newly created comment by a person (never a bot)."""
        if not item.is_comment or item.action != "created" or item.actor_is_bot:
            return []
        jobs = self.candidates(item)
        triggers = [(job, trigger) for job in jobs for trigger in job.commands]
        matches: dict[int, CommandMatch] = {}
        for command in parse_commands(item.comment_body):
            for job, args in best_matches(triggers, command):
                typed = f"/{command.name} {command.args}".strip()
                matches.setdefault(job.id, CommandMatch(job, typed, args))
        return list(matches.values())

    def mention(self, item: ItemEvent) -> str | None:
        """The request after ``@<app-slug>`` in a person's new comment (``""``: a bare
        mention), or None: no slug known, no mention, or a bot's (the app's own) comment."""
        slug = self.app_slug
        if slug is None or not _new_comment(item) or item.actor_is_bot:
            return None
        if is_app_login(item.actor_login, slug):
            return None
        return find_mention(item.comment_body, slug)

    def mention_jobs(self, item: ItemEvent) -> list[IndexedJob]:
        """The jobs a mention on this item runs (once :meth:`mention` found one)."""
        return [job for job in self.candidates(item) if job.mention]

    def assignment_jobs(self, item: ItemEvent) -> list[IndexedJob]:
        """The jobs an issue assigned to the app's bot user by a person runs."""
        if item.actor_is_bot or not assigns_app(item, "assigned", self.app_slug):
            return []
        return [job for job in self.candidates(item) if job.assignment]


def assigns_app(item: ItemEvent, action: str, slug: str | None) -> bool:
    """The event is ``issues.<action>`` (assigned, unassigned) of the app's bot user. Pull
    requests assigned to the bot start nothing: a PR is talked to by mentioning the app."""
    return (
        item.event == "issues"
        and item.action == action
        and item.item_kind == "issue"
        and is_app_login(item.assignee_login, slug)
    )


def event_matches(trigger: EventTrigger, item: ItemEvent) -> bool:
    """Every condition of the trigger holds for the item (paths are checked by the worker)."""
    if trigger.name != item.event or (trigger.action and trigger.action != item.action):
        return False
    if item.actor_is_bot and not trigger.include_bots:
        return False
    if trigger.labels:
        wanted = {label.lower() for label in trigger.labels}
        if not wanted & {label.lower() for label in item.labels}:
            return False
    if trigger.author_association and item.author_association not in trigger.author_association:
        return False
    if trigger.draft is not None or trigger.base_branches:
        if item.pull is None:
            return False
        if trigger.draft is not None and item.pull.draft != trigger.draft:
            return False
        if trigger.base_branches and not any(
            fnmatch.fnmatchcase(item.pull.base_ref, pattern) for pattern in trigger.base_branches
        ):
            return False
    return True


def _indexed(row: Any) -> IndexedJob:
    return IndexedJob(
        id=row.id,
        repo_id=row.repo_id,
        installation_id=row.installation_id,
        repo_selection=row.repo_selection,
        repo_ids=frozenset(row.repo_ids or ()),
        events=tuple(EventTrigger.model_validate(t) for t in row.event_triggers or ()),
        commands=tuple(parse_command_trigger(t) for t in row.command_triggers or ()),
        concurrency_policy=row.concurrency_policy,
        mention=bool(row.mention_trigger),
        assignment=bool(row.assignment_trigger),
    )


def _triggered_by_github(row: Any) -> bool:
    return bool(
        row.event_triggers or row.command_triggers or row.mention_trigger or row.assignment_trigger
    )


def _new_comment(item: ItemEvent) -> bool:
    """A comment just written: an issue or PR comment, a review comment, a review."""
    if not item.is_comment:
        return False
    if item.event == "pull_request_review":
        return item.action == "submitted"
    return item.action == "created"
