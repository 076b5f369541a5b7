"""Acting on a session's structured result: labels, duplicates, assignees.

A job's ``structured_actions`` (checked by :func:`ghapp.structured.check_actions`) says what
ghapp may do with the structured result of a session on an issue or pull request:

* ``labels: {"allowed": [...]}``: apply the result's ``labels`` that are in the allow-list
  *and* exist in the repository (compared case-insensitively; GitHub's own spelling is
  applied). ghapp never creates a label (GitHub's add-labels call would);
* ``duplicate: true``: when the result's ``duplicate_of`` names another issue of the same
  repository, comment "Duplicate of #N" and close the issue as a duplicate;
* ``assign: {"allowed": [...]}``: assign the result's ``assignees`` (a list of logins, which
  a job's own output schema declares; ``issue/triage`` has none) that are in the allow-list
  and that GitHub says may be assigned;
* ``dry_run: true``: change nothing, and record the same actions as what ghapp *would* do.

The model that wrote the result read strangers' text, so the allow-lists are the only
authority: a name outside them is refused whatever the result says. A command open to
readers never acts (``ghapp.tiers``). Every action — done, would, refused or failed, with
why — is written to the audit log (actor ``job:<id>``, the issue as object) and stored with
the session (``sessions.structured_actions``), in one transaction. A GitHub call that fails
is recorded as ``failed``; the session's result is never lost for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI
from sqlalchemy import update
from sqlmodel import col

from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.audit import audit_insert
from ghapp.db.errors import describe
from ghapp.db.models import Session
from ghapp.runners.base import Outcome
from ghapp.tiers import READERS, READERS_NEVER_ACT
from ghapp.worker.prepare import Item
from ghapp.worker.rows import JobRow, RepoRow

NOT_ALLOWED_LABEL = "not in the job's allowed labels"
NO_SUCH_LABEL = "no such label in the repository"
NOT_ALLOWED_ASSIGNEE = "not in the job's allowed assignees"
NOT_ASSIGNABLE = "GitHub says this login cannot be assigned in the repository"
ITSELF = "an issue is not a duplicate of itself"
NO_SUCH_ISSUE = "no such issue in the repository"
IS_A_PULL = "a pull request, not an issue"
ONLY_ISSUES = "only an issue is closed as a duplicate"
FAILED = "GitHub: {error}"
DUPLICATE_COMMENT = "Duplicate of #{number}"
ALREADY_DUPLICATE = "already closed as a duplicate; not said again"
MAX_NAMES = 20  # the result's names looked at (a result may hold more; they are left)
MAX_VALUE = 100


@dataclass
class Acting:
    """One session's actions as they are decided and done."""

    gh: GitHubAPI
    repo: str
    number: int
    dry_run: bool
    done: list[dict[str, Any]] = field(default_factory=list)

    def record(self, action: str, value: str, status: str, reason: str | None = None) -> None:
        self.done.append({"action": action, "value": value, "status": status, "reason": reason})

    def allowed(self, action: str, values: list[str]) -> None:
        for value in values:
            self.record(action, value, "would" if self.dry_run else "done")

    def failed(self, action: str, values: list[str], exc: Exception) -> None:
        for value in values:
            self.record(action, value, "failed", FAILED.format(error=describe(exc)[:300]))


async def act(
    db: Database,
    clock: Clock,
    gh: GitHubAPI,
    job: JobRow,
    repo: RepoRow,
    item: Item,
    command: Any,
    session_id: int,
    outcome: Outcome,
) -> list[dict[str, Any]]:
    """Do (or, in a dry run, describe) what the job allows with the session's result;
    record every action in the audit log and on the session. Returns the actions."""
    actions, result = job.structured_actions, outcome.structured_result
    if not actions or result is None or not outcome.ok or item.number is None:
        return []
    acting = Acting(gh, repo.full_name, item.number, bool(actions.get("dry_run")))
    if item.trust.read_only or getattr(command, "open_to", None) == READERS:
        acting.record("all", "structured actions", "refused", READERS_NEVER_ACT)  # defence
    else:
        if actions.get("labels"):
            await _labels(acting, _names(result.get("labels")), actions["labels"]["allowed"])
        if actions.get("assign"):
            await _assign(acting, _names(result.get("assignees")), actions["assign"]["allowed"])
        if actions.get("duplicate"):
            await _duplicate(acting, item, result.get("duplicate_of"))
    await _store(db, clock, job, repo, item, session_id, acting)
    return acting.done


def _names(value: Any) -> list[str]:
    """The result's names, as it gave them: a list of strings (or one), deduplicated
    case-insensitively, each cut to a length a name can have."""
    given = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    names: dict[str, str] = {}
    for name in given[:MAX_NAMES]:
        if isinstance(name, str) and name.strip():
            names.setdefault(name.strip().lower(), name.strip()[:MAX_VALUE])
    return list(names.values())


async def _labels(acting: Acting, wanted: list[str], allowed: list[str]) -> None:
    permitted = {name.strip().lower() for name in allowed}
    candidates = []
    for name in wanted:
        if name.lower() in permitted:
            candidates.append(name)
        else:
            acting.record("label", name, "refused", NOT_ALLOWED_LABEL)
    if not candidates:
        return
    try:
        existing = await _repository_labels(acting)
    except Exception as exc:
        acting.failed("label", candidates, exc)
        return
    apply = []
    for name in candidates:
        if name.lower() in existing:
            apply.append(existing[name.lower()])
        else:
            acting.record("label", name, "refused", NO_SUCH_LABEL)
    if apply and not acting.dry_run:
        try:
            labels = {"labels": apply}
            await acting.gh.post(f"/repos/{acting.repo}/issues/{acting.number}/labels", data=labels)
        except Exception as exc:
            acting.failed("label", apply, exc)
            return
    acting.allowed("label", apply)


async def _repository_labels(acting: Acting) -> dict[str, str]:
    """The repository's labels: lower-cased name → GitHub's spelling (every page)."""
    found: dict[str, str] = {}
    async for label in acting.gh.getiter(f"/repos/{acting.repo}/labels?per_page=100"):
        found[str(label["name"]).lower()] = str(label["name"])
    return found


async def _assign(acting: Acting, wanted: list[str], allowed: list[str]) -> None:
    permitted = {login.strip().lower(): login.strip() for login in allowed}
    assign = []
    for named in wanted:
        login = permitted.get(named.lower())  # the job's spelling goes into the address
        if login is None:
            acting.record("assign", named, "refused", NOT_ALLOWED_ASSIGNEE)
            continue
        try:
            await acting.gh.getitem(f"/repos/{acting.repo}/assignees/{login}")
        except BadRequest as exc:
            if exc.status_code != 404:
                acting.failed("assign", [login], exc)
                continue
            acting.record("assign", login, "refused", NOT_ASSIGNABLE)
            continue
        except Exception as exc:
            acting.failed("assign", [login], exc)
            continue
        assign.append(login)
    if assign and not acting.dry_run:
        try:
            logins = {"assignees": assign}
            await acting.gh.post(
                f"/repos/{acting.repo}/issues/{acting.number}/assignees", data=logins
            )
        except Exception as exc:
            acting.failed("assign", assign, exc)
            return
    acting.allowed("assign", assign)


async def _duplicate(acting: Acting, item: Item, of: Any) -> None:
    if not isinstance(of, int) or isinstance(of, bool) or of < 1:
        return  # the result names no duplicate
    value = f"#{of}"
    problem = ONLY_ISSUES if item.kind != "issue" else ITSELF if of == acting.number else None
    if problem is None:
        try:
            problem = await _not_an_issue(acting, of)
        except Exception as exc:
            acting.failed("duplicate", [value], exc)
            return
    if problem is not None:
        acting.record("duplicate", value, "refused", problem)
        return
    if not acting.dry_run:
        comment = {"body": DUPLICATE_COMMENT.format(number=of)}
        closed = {"state": "closed", "state_reason": "duplicate"}
        try:
            if await _closed_as_duplicate(acting):  # a retried run acted already: say it once
                acting.record("duplicate", value, "done", ALREADY_DUPLICATE)
                return
            await acting.gh.post(
                f"/repos/{acting.repo}/issues/{acting.number}/comments", data=comment
            )
            await acting.gh.patch(f"/repos/{acting.repo}/issues/{acting.number}", data=closed)
        except Exception as exc:
            acting.failed("duplicate", [value], exc)
            return
    acting.allowed("duplicate", [value])


async def _closed_as_duplicate(acting: Acting) -> bool:
    """Whether the item is closed as a duplicate already (by a run retried after it acted,
    or by a person): then no second "Duplicate of" comment."""
    issue = await acting.gh.getitem(f"/repos/{acting.repo}/issues/{acting.number}")
    return issue.get("state") == "closed" and issue.get("state_reason") == "duplicate"


async def _not_an_issue(acting: Acting, number: int) -> str | None:
    """Why #number of the same repository cannot be the original, or None."""
    try:
        other = await acting.gh.getitem(f"/repos/{acting.repo}/issues/{number}")
    except BadRequest as exc:
        if exc.status_code in (404, 410):
            return NO_SUCH_ISSUE
        raise
    return IS_A_PULL if other.get("pull_request") else None


async def _store(
    db: Database,
    clock: Clock,
    job: JobRow,
    repo: RepoRow,
    item: Item,
    session_id: int,
    acting: Acting,
) -> None:
    """The actions on the session, and each in the audit log, in one transaction."""
    now = clock.now()
    kind = "pull_request" if item.kind == "pr" else "issue"
    async with db.write() as conn:
        await conn.execute(
            update(Session)
            .where(col(Session.id) == session_id)
            .values(structured_actions=acting.done)
        )
        for action in acting.done:
            await conn.execute(
                audit_insert(
                    f"job:{job.id}",
                    f"structured_action.{action['action']}",
                    kind,
                    item.number,
                    now,
                    repo_id=repo.id,
                    after={**action, "session_id": session_id, "dry_run": acting.dry_run},
                )
            )
