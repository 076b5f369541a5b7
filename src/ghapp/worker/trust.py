"""Who wrote what a session works on, and so what the session may do.

On a public repository anyone can open an issue or a pull request, and a fork's pull
request brings its own files: code, ``.claude/`` settings with hooks, ``.mcp.json`` servers,
repository commands, ``CLAUDE.md``. Two facts decide what a session may do, and both are
asked of GitHub for every item, never taken from the event alone:

* **the head**: is the code checked out the repository's own (the default branch, or a
  branch of this repository), or a fork's? A pull request is looked up (``GET
  /pulls/N``) even when the event was a comment, which says nothing of where the head lives;
* **the author**: may the person who wrote the issue or pull request write to the
  repository (``write``, ``maintain`` or ``admin``; the collaborator-permission endpoint)?

Write and exec tools (``Bash``, ``Edit``, ``Write``…) and publishing need both, *and* a job
that allows them. A repository command's ``allowed-tools`` can narrow the job's tools,
never widen them. A session a reader asked for, or of a command open to readers
(``ghapp.tiers``), is read-only whatever the job or the command says: only the read-only
tools, no permission mode, no publishing. A session on a fork's head loads no project
settings at all: no hooks, no MCP servers, no plugins (its ``.claude/`` and ``CLAUDE.md``
are the default branch's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gidgethub.abc import GitHubAPI

from ghapp.worker.authorize import ALLOWED, Authorizer

WRITE_TOOLS = ("Bash", "Edit", "Write", "MultiEdit", "NotebookEdit", "PowerShell")
READ_ONLY_TOOLS = ("Read", "Glob", "Grep")  # all a read-only session even sees (--tools)


@dataclass(frozen=True)
class Trust:
    head: bool = True  # the checkout is the repository's own code
    author: bool = True  # the item's author may write to the repository
    reason: str = ""  # why not, in words (for the run page and the log)
    head_sha: str | None = None  # a pull request's head commit as GitHub said (check runs)
    read_only: bool = False  # asked for by a reader, or a command open to readers

    @property
    def writes(self) -> bool:
        return self.head and self.author and not self.read_only


@dataclass(frozen=True)
class Policy:
    """What a session is given: its tools, its permission mode, which settings it loads."""

    allowed_tools: tuple[str, ...]
    disallowed_tools: tuple[str, ...]
    tools: tuple[str, ...] | None  # None: the CLI's default set
    permission_mode: str | None
    project_settings: bool  # load the checkout's .claude/settings.json, hooks, .mcp.json
    writes: bool  # may change files and publish


async def trust_of(
    gh: GitHubAPI,
    authorizer: Authorizer,
    repo: str,
    kind: str,
    number: int | None,
    author: str | None,
) -> tuple[Trust, dict[str, Any] | None]:
    """The item's trust, and the pull request as GitHub describes it (for PR items)."""
    if kind not in ("issue", "pr") or number is None:
        return Trust(), None  # the default branch, no author: the repository's own
    pull = None
    head = True
    reasons = []
    if kind == "pr":
        pull = await gh.getitem(f"/repos/{repo}/pulls/{number}")
        head_repo = ((pull.get("head") or {}).get("repo") or {}).get("full_name")
        head = bool(head_repo) and str(head_repo).lower() == repo.lower()
        if not head:
            reasons.append(f"the head is in {head_repo or 'a deleted fork'}")
        author = ((pull.get("user") or {}).get("login")) or author
    trusted_author = False
    if author:
        permission = await authorizer.permission(gh, repo, author)
        trusted_author = permission in ALLOWED
        if not trusted_author:
            reasons.append(f"{author} has {permission} permission")
    else:
        reasons.append("the author is unknown")
    head_sha = ((pull or {}).get("head") or {}).get("sha")
    return Trust(head, trusted_author, "; ".join(reasons), head_sha), pull


def policy(job: Any, command: Any, trust: Trust) -> Policy:
    """The session's tools and settings, from the job, the command and the item's trust."""
    allowed = _narrowed(tuple(job.allowed_tools or ()), command)
    # A writer's own fork may get write tools when the job says so; a stranger's never.
    if trust.read_only or getattr(command, "open_to", "writers") != "writers":
        return _reader_policy(job, allowed, trust)
    forks_allowed = bool((job.task_config or {}).get("allow_write_on_forks")) and trust.author
    writes = (trust.writes or forks_allowed) and (
        any(_base(tool) in WRITE_TOOLS for tool in allowed)
        or job.permission_mode in ("acceptEdits", "bypassPermissions")
    )
    if writes:
        return Policy(
            allowed_tools=allowed,
            disallowed_tools=tuple(job.disallowed_tools or ()),
            tools=None,
            permission_mode=job.permission_mode,
            project_settings=trust.head,
            writes=True,
        )
    read_only = tuple(t for t in allowed if _base(t) not in WRITE_TOOLS)
    extra = tuple(dict.fromkeys(_base(t) for t in read_only if _base(t) not in READ_ONLY_TOOLS))
    disallowed = tuple(dict.fromkeys([*(job.disallowed_tools or ()), *WRITE_TOOLS]))
    return Policy(
        allowed_tools=read_only,
        disallowed_tools=disallowed,
        tools=(*READ_ONLY_TOOLS, *extra),
        permission_mode=None,  # never acceptEdits or bypass for a read-only session
        project_settings=trust.head,
        writes=False,
    )


def reader_job(job: Any, trust: Trust, command: Any = None) -> Any:
    """The job as a read-only session sees it (a reader asked, or its command is open to
    readers): its report goes to the tracking comment whatever the job says (a report issue
    would let a reader create issues). Its structured actions stay, so that the session
    records that it did not act (``worker.actions``)."""
    readers = trust.read_only or getattr(command, "open_to", "writers") != "writers"
    if not readers or job.report == "comment":
        return job
    return dataclasses.replace(job, report="comment")


def _reader_policy(job: Any, allowed: tuple[str, ...], trust: Trust) -> Policy:
    """Reading the checkout and nothing else: no write, exec or network tool is even seen."""
    return Policy(
        allowed_tools=tuple(t for t in allowed if t in READ_ONLY_TOOLS),
        disallowed_tools=tuple(dict.fromkeys([*(job.disallowed_tools or ()), *WRITE_TOOLS])),
        tools=READ_ONLY_TOOLS,
        permission_mode=None,
        project_settings=trust.head,
        writes=False,
    )


def _narrowed(job_tools: tuple[str, ...], command: Any) -> tuple[str, ...]:
    """A repository command may narrow the job's tools, never widen them."""
    wanted: Sequence[str] = getattr(command, "allowed_tools", ()) or ()
    if not wanted:
        return job_tools
    return tuple(tool for tool in wanted if _covered(tool, job_tools))


def _covered(tool: str, job_tools: tuple[str, ...]) -> bool:
    """Is ``tool`` (maybe ``Bash(git diff:*)``) within what the job allows? Reading the
    checkout is always allowed; anything else only if the job names it."""
    return _base(tool) in READ_ONLY_TOOLS or tool in job_tools or _base(tool) in job_tools


def _base(tool: str) -> str:
    return tool.split("(", 1)[0].strip()
