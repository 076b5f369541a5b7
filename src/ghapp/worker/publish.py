"""Sessions that change code: their changes become a pull request.

Called by the executor after a session ended successfully, while its checkout still exists.
A job opts in with ``task_config["publish"]``:

* ``"pr"`` — the changes left in the working tree (modified, deleted and new files;
  ignored files are not changes) are committed to the branch ``ghapp/<job-slug>/<item>``
  (``issue-12``, ``pr-7``, ``codebase``, ``custom``; the slug is the job's name in
  ``[a-z0-9-]``, at most 40 characters), pushed, and a pull request is opened — or, when an
  open one from that branch exists, its body is updated. An issue's pull request says
  ``Fixes #N``, so merging it closes the issue; a PR's says ``Refs #N``.
* ``"dry_run"`` — nothing is pushed and no pull request is touched: the unified diff is
  returned for the tracking comment (cut to fit a GitHub comment).
* anything else, or nothing — publishing is off: nothing happens.

Rules, the same in both modes (a dry run shows what ``"pr"`` would do):

* Never the default branch, never a fork: the only ref ever pushed is
  ``refs/heads/ghapp/…``, in the repository itself. A PR item whose head lives in a fork
  (``item.fork``, or GitHub says so) is refused: that is someone else's code.
* Changes under ``.github/workflows/`` are refused: ghapp does not write CI.
* Never a force push. If the branch exists, its tip is fetched and the new commit goes on
  top of it (a fast-forward; a plain ``git push`` that the server would refuse otherwise).
  Each run's commit holds that run's whole proposal (the tree the session left), so the
  pull request always shows the latest proposal. If the commit the session started from is
  no longer the branch's base (the default branch moved), it becomes the new commit's
  second parent, so the pull request's diff stays just the proposal. A branch whose tip was
  committed by someone else is left alone (refused), so a person's fix is never undone.
* A PR item's branch is stacked on that PR: the new pull request's base is the PR's head
  branch (its diff is only ghapp's changes); otherwise the base is the default branch.

How, safely: the session could have written anything into the checkout, ``.git/`` included
(``url.*.insteadOf`` would send the token elsewhere, a filter driver would run a command).
So no git command here runs in the checkout's own repository: a fresh private git directory
is made beside it, borrowing the checkout's objects (``objects/info/alternates``, data
only) and using the checkout as its work tree; its config is git's defaults. The commit the
session started from is the checkout's shallow boundary (it is a ``--depth 1`` clone), so a
session that committed its work itself is published all the same. The installation token
reaches only ``ls-remote``, ``fetch`` and ``push``, in git's environment as
:func:`ghapp.worker.checkout.git_environment` puts it — never in a URL, an argument or a
config file.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI

from ghapp.worker.checkout import CheckoutError, _git, clone_url, git_environment
from ghapp.worker.report import MAYBE_APPLIED

Action = Literal["none", "opened", "updated", "dry_run", "refused"]
MODES = ("pr", "dry_run")
BOT_NAME = "ghapp[bot]"
BOT_EMAIL = "ghapp[bot]@users.noreply.github.com"
BRANCH_PREFIX = "ghapp/"
SLUG_MAX = 40
WORKFLOWS = ".github/workflows"
DIFF_LIMIT = 60_000  # leaves room for the rest of a 65,536-character tracking comment
FILES_LISTED = 50  # in a pull request's body
BASE_TRAILER = "Ghapp-Base"
GITLINK = "160000"  # the mode git gives a nested repository (a submodule)
FORK = "this pull request's head is in a fork; ghapp does not publish changes to forks."
PUBLISH_MARKER = "<!-- ghapp:publish job={job_id} item={item} -->"
MOVED = (
    "the branch `{branch}` moved while this session ran (another session pushed to it); "
    "this session's changes were not published, so nothing was undone. Reply again to "
    "continue from there."
)


class PublishError(CheckoutError):
    """A git step of publishing failed (the message names it; the token is masked)."""


@dataclass(frozen=True)
class Published:
    """What publishing did. ``reason`` says why for ``none`` (None: publishing is off)
    and ``refused``; ``diff`` is set for ``dry_run``."""

    action: Action
    branch: str | None = None
    pr_url: str | None = None
    pr_number: int | None = None
    diff: str | None = None
    reason: str | None = None
    commit: str | None = None  # the commit pushed, None if nothing was
    files: tuple[str, ...] = field(default=())  # the paths changed


def publish_mode(job: Any) -> str | None:
    mode = (getattr(job, "task_config", None) or {}).get("publish")
    return mode if mode in MODES else None


def job_slug(job: Any) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", str(job.name).lower()).strip("-")[:SLUG_MAX].strip("-")
    return slug or f"job-{job.id}"


def item_label(item: Any) -> str:
    """``issue-12``, ``pr-7``, ``codebase``, ``custom``."""
    if item.kind in ("issue", "pr") and item.number is not None:
        return f"{item.kind}-{item.number}"
    return re.sub(r"[^a-z0-9-]+", "-", str(item.kind).lower()).strip("-") or "item"


def item_title(item: Any) -> str:
    """``issue #12``, ``PR #7``, ``codebase``, ``custom``."""
    if item.kind == "issue" and item.number is not None:
        return f"issue #{item.number}"
    if item.kind == "pr" and item.number is not None:
        return f"PR #{item.number}"
    return str(item.kind)


def branch_name(job: Any, item: Any) -> str:
    return f"{BRANCH_PREFIX}{job_slug(job)}/{item_label(item)}"


def pr_title(job: Any, item: Any) -> str:
    return f"ghapp: {job.name} ({item_title(item)})"


async def publish_changes(
    gh: GitHubAPI,
    work: Path,
    *,
    repo: str,
    default_branch: str,
    token: str | None,
    job: Any,
    item: Any,
    settings: Any,
    session_id: int,
    base_commit: str | None = None,
    branch: str | None = None,
) -> Published:
    """Publish what the session left in ``work`` as ``job.task_config["publish"]`` says.

    ``job``: ``id``, ``name``, ``task_config``; ``item``: ``kind``, ``number``, ``fork``;
    ``settings``: ``git_url``. ``base_commit``: the commit the checkout was made at, recorded
    before the session ran (everything in ``work``, ``.git/`` included, is the session's to
    change, so nothing there can say what the base was). ``branch``: a follow-up's, the
    branch its earlier session published to (checked out, so the commit is a plain
    fast-forward of it; its pull request is proposed to the default branch). Raises
    :class:`PublishError` when git fails and gidgethub's exceptions when GitHub does.
    """
    mode = publish_mode(job)
    if mode is None:
        return Published("none")
    follow_up = branch is not None
    branch = branch or branch_name(job, item)
    if branch == default_branch:  # only if someone named their default branch like this
        reason = f"`{branch}` is the default branch; ghapp never pushes to it."
        return Published("refused", branch=branch, reason=reason)
    root = Path(tempfile.mkdtemp(prefix="ghapp-publish-", dir=work.parent))
    try:
        stage = await _Stage.make(root / "git", work, base_commit)
        files = await stage.changed()
        if not files:
            return Published("none", branch=branch, reason="The session left no changes.")
        refusal = _workflow_refusal(files) or _nested_refusal(stage.nested) or _fork_refusal(item)
        if refusal is None and item.kind == "pr" and item.number is not None and not follow_up:
            base, refusal = await _pull_base(gh, repo, item.number)
        else:
            base = default_branch
        if refusal is not None:
            return Published("refused", branch=branch, reason=refusal, files=files)
        if mode == "dry_run":
            return Published(
                "dry_run", branch=branch, diff=cut_diff(await stage.diff()), files=files
            )
        url = clone_url(settings.git_url, repo)
        commit, refusal = await stage.commit_on_branch(
            url,
            token,
            branch,
            _commit_message(job, item, session_id, stage.base),
            on_tip=follow_up,
        )
        if refusal is not None:
            return Published("refused", branch=branch, reason=refusal, files=files)
        if commit is not None:
            await stage.push(url, token, commit, branch)
        body = _pr_body(job, item, session_id, branch, files)
        number, pr_url, opened = await _open_or_update(
            gh, repo, branch, base, pr_title(job, item), body
        )
        return Published(
            "opened" if opened else "updated",
            branch=branch,
            pr_url=pr_url,
            pr_number=number,
            commit=commit,
            files=files,
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, root, True)


def comment_section(published: Published) -> str:
    """The markdown for the tracking comment ("" when there is nothing to say)."""
    if published.action in ("opened", "updated"):
        verb = "Opened" if published.action == "opened" else "Updated"
        return (
            f"**Changes:** {verb} pull request [#{published.pr_number}]({published.pr_url})"
            f" from `{published.branch}`."
        )
    if published.action == "dry_run":
        diff = published.diff or ""
        longest = max((len(run) for run in re.findall(r"`+", diff)), default=0)
        fence = "`" * max(3, longest + 1)
        return (
            f"**Changes (dry run, nothing was pushed)** — would go to `{published.branch}`:"
            f"\n\n{fence}diff\n{diff.rstrip()}\n{fence}"
        )
    if published.action == "refused":
        return f"**Changes not published:** {published.reason}"
    return f"_{published.reason}_" if published.reason else ""


def cut_diff(diff: str, limit: int = DIFF_LIMIT) -> str:
    """``diff``, or its first lines up to ``limit`` characters and a note saying so."""
    if len(diff) <= limit:
        return diff
    note = f"… (cut: the diff has {len(diff):,} characters; the first {{shown:,}} are shown)\n"
    room = limit - len(note) - 20
    head = diff[:room]
    if "\n" in head:
        head = head[: head.rindex("\n") + 1]
    return head + note.format(shown=len(head))


# -- git -----------------------------------------------------------------------------------


class _Stage:
    """A private git directory whose work tree is the checkout (see the module's text)."""

    def __init__(self, git_dir: Path, work: Path, base: str) -> None:
        self.git_dir, self.work, self.base = git_dir, work, base
        self.nested: list[str] = []

    @classmethod
    async def make(cls, git_dir: Path, work: Path, base: str | None = None) -> _Stage:
        objects = work / ".git" / "objects"
        if not objects.is_dir():
            raise PublishError(f"{work} is not a git checkout")
        base = base or await _started_from(work)
        await _run(["init", "--quiet", "--bare", "--template=", str(git_dir)], None, work.parent)
        (git_dir / "objects" / "info").mkdir(parents=True, exist_ok=True)
        (git_dir / "objects" / "info" / "alternates").write_text(f"{objects.resolve()}\n")
        shallow = work / ".git" / "shallow"
        if shallow.is_file():
            (git_dir / "shallow").write_text(shallow.read_text())
        stage = cls(git_dir, work, base)
        await stage.git(["read-tree", base])
        return stage

    async def git(self, args: list[str], token: str | None = None, **extra: str) -> str:
        env = _environment(token, GIT_DIR=str(self.git_dir), GIT_WORK_TREE=str(self.work), **extra)
        return await _run(args, token, self.work, env)

    async def changed(self) -> tuple[str, ...]:
        """Every path that differs from the commit the session started from (and in
        :attr:`nested` those that became another git repository: a gitlink)."""
        await self.git(["add", "--all"])
        out = await self.git(["diff", "--cached", "--raw", "--no-renames", "-z", self.base])
        fields = out.split("\0")  # ":old-mode new-mode old new status", path, ...
        pairs = list(zip(fields[0::2], fields[1::2], strict=False))
        self.nested = [path for meta, path in pairs if meta.split()[1:2] == [GITLINK]]
        return tuple(path for _meta, path in pairs if path)

    async def diff(self) -> str:
        return await self.git(
            ["diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv", self.base]
        )

    async def commit_on_branch(
        self, url: str, token: str | None, branch: str, message: str, on_tip: bool = False
    ) -> tuple[str | None, str | None]:
        """(the commit to push — None if the branch already holds this proposal, refusal).
        ``on_tip``: the checkout was the branch itself (a follow-up); if another session
        pushed to it since, this commit's tree would undo that push: refused."""
        tree = (await self.git(["write-tree"])).strip()
        parents = [self.base]
        listed = await self.git(["ls-remote", "--heads", url, f"refs/heads/{branch}"], token)
        tip = next(
            (
                line.split("\t")[0]
                for line in listed.splitlines()
                if line.endswith(f"\trefs/heads/{branch}")
            ),
            None,
        )
        if tip is not None:
            await self.git(
                ["fetch", "--quiet", "--no-tags", "--depth", "1", url, f"refs/heads/{branch}"],
                token,
            )
            raw = await self.git(["cat-file", "commit", tip])
            refusal = _foreign_tip(raw, branch)
            if refusal is None and on_tip and tip != self.base:
                refusal = MOVED.format(branch=branch)
            if refusal is None:
                since_tip = await self.git(["diff", "--name-only", "--no-renames", "-z", tip, tree])
                moved = [p for p in since_tip.split("\0") if p and _is_workflow(p)]
                if moved:
                    refusal = (
                        f"relative to the existing branch `{branch}` the commit would change "
                        f"`{moved[0]}` (the default branch changed its workflows since the "
                        "branch was made); delete the branch to start over."
                    )
            if refusal is not None:
                return None, refusal
            tip_tree = (await self.git(["rev-parse", f"{tip}^{{tree}}"])).strip()
            tip_base = _trailer(raw, BASE_TRAILER)
            if tip == self.base and tip_base:  # a follow-up began at the branch's tip
                message = message.replace(
                    f"{BASE_TRAILER}: {self.base}", f"{BASE_TRAILER}: {tip_base}"
                )
                same_base = True
            else:
                same_base = tip_base == self.base
            if tip_tree == tree and same_base:
                return None, None  # the branch holds exactly this proposal already
            parents = [tip] if same_base else [tip, self.base]
        identity = {
            "GIT_AUTHOR_NAME": BOT_NAME,
            "GIT_AUTHOR_EMAIL": BOT_EMAIL,
            "GIT_COMMITTER_NAME": BOT_NAME,
            "GIT_COMMITTER_EMAIL": BOT_EMAIL,
        }
        args = ["commit-tree", tree, *(a for p in parents for a in ("-p", p)), "-m", message]
        return (await self.git(args, **identity)).strip(), None

    async def push(self, url: str, token: str | None, commit: str, branch: str) -> None:
        """A plain push (no ``--force``, no ``+``): the remote refuses anything but a
        fast-forward, so nobody's commits are ever overwritten."""
        if not branch.startswith(BRANCH_PREFIX):  # the one ref ghapp ever pushes
            raise PublishError(f"refusing to push to {branch}")
        await self.git(
            ["push", "--quiet", "--no-verify", url, f"{commit}:refs/heads/{branch}"], token
        )


async def _started_from(work: Path) -> str:
    """The commit the checkout was made at: its shallow boundary (a ``--depth 1`` clone
    has exactly one), else HEAD."""
    shallow = work / ".git" / "shallow"
    lines = shallow.read_text().split() if shallow.is_file() else []
    if len(lines) == 1 and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", lines[0]):
        return lines[0]
    env = _environment(None, GIT_DIR=str(work / ".git"))
    return (await _run(["rev-parse", "--verify", "HEAD^{commit}"], None, work, env)).strip()


def _environment(token: str | None, **extra: str) -> dict[str, str]:
    """checkout.py's git environment (the token as an ``http.extraHeader``) plus settings
    no config file can override: no hooks, no fsmonitor, no pager."""
    env = git_environment(token)
    count = int(env.get("GIT_CONFIG_COUNT", "0"))
    for key, value in (
        ("core.hooksPath", "/dev/null"),
        ("core.fsmonitor", "false"),
        ("core.pager", "cat"),
    ):
        env[f"GIT_CONFIG_KEY_{count}"], env[f"GIT_CONFIG_VALUE_{count}"] = key, value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)
    env.update(extra)
    return env


async def _run(
    args: list[str], token: str | None, cwd: Path, env: dict[str, str] | None = None
) -> str:
    try:
        return await _git(args, env or _environment(token), cwd, token)
    except CheckoutError as exc:
        raise PublishError(f"publishing: {exc}") from None


def _is_workflow(path: str) -> bool:
    lowered = path.lower()
    return lowered == WORKFLOWS or lowered.startswith(WORKFLOWS + "/")


def _workflow_refusal(files: tuple[str, ...]) -> str | None:
    touched = [path for path in files if _is_workflow(path)]
    if not touched:
        return None
    return (
        f"the session changed `{touched[0]}`"
        + (f" and {len(touched) - 1} more" if len(touched) > 1 else "")
        + "; ghapp never publishes changes under `.github/workflows/`."
    )


def _nested_refusal(nested: list[str]) -> str | None:
    if not nested:
        return None
    return (
        f"the session left a git repository inside the checkout at `{nested[0]}`; "
        "ghapp does not publish submodules."
    )


def _fork_refusal(item: Any) -> str | None:
    if item.kind == "pr" and getattr(item, "fork", False):
        return FORK
    return None


async def _pull_base(gh: GitHubAPI, repo: str, number: int) -> tuple[str, str | None]:
    """(the base for a PR item's pull request: its head branch, refusal if it is a fork's)."""
    pull = await gh.getitem(f"/repos/{repo}/pulls/{number}")
    head_repo = (pull.get("head") or {}).get("repo") or {}
    if str(head_repo.get("full_name", "")).lower() != repo.lower():
        return "", FORK
    if pull.get("state") != "open":  # its branch may be gone: propose to its base instead
        return str(pull["base"]["ref"]), None
    return str(pull["head"]["ref"]), None


def _foreign_tip(raw_commit: str, branch: str) -> str | None:
    header = raw_commit.split("\n\n", 1)[0]
    for role in ("author", "committer"):
        match = re.search(rf"^{role} (.*) <([^>]*)>", header, re.MULTILINE)
        if match is None or match.group(2) != BOT_EMAIL:
            who = match.group(1) if match else "unknown"
            return (
                f"the branch `{branch}` has a commit by {who}; ghapp adds only to its own "
                "commits. Merge or close its pull request and delete the branch to let "
                "ghapp start over."
            )
    return None


def _trailer(raw_commit: str, name: str) -> str | None:
    found = re.findall(rf"^{re.escape(name)}: *(\S+)\s*$", raw_commit, re.MULTILINE)
    return found[-1] if found else None


def _refs(item: Any) -> str:
    return f"Refs #{item.number}" if item.kind in ("issue", "pr") and item.number else ""


def _closes(item: Any) -> str:
    """An issue's pull request closes it when merged (GitHub reads ``Fixes #N`` in the
    body); a pull request's own is only referred to."""
    return f"Fixes #{item.number}" if item.kind == "issue" and item.number else ""


def _commit_message(job: Any, item: Any, session_id: int, base: str) -> str:
    refs = _refs(item)
    return (
        f"ghapp: {job.name} ({item_title(item)})\n\n"
        f"The changes ghapp's session {session_id} of the job '{job.name}' (job {job.id}) "
        f"left on {item_title(item)}."
        + (f"\n\n{refs}" if refs else "")
        + f"\n\nGhapp-Job: {job.id}\nGhapp-Session: {session_id}\n{BASE_TRAILER}: {base}\n"
    )


def _pr_body(job: Any, item: Any, session_id: int, branch: str, files: tuple[str, ...]) -> str:
    listed = "\n".join(f"- `{path}`" for path in files[:FILES_LISTED])
    if len(files) > FILES_LISTED:
        listed += f"\n- … and {len(files) - FILES_LISTED} more"
    refs = _closes(item) or _refs(item)
    return (
        f"ghapp ran the job **{job.name}** on {item_title(item)}; its session left changes, "
        f"committed here to `{branch}`.\n\n"
        f"Latest session: {session_id} · files changed ({len(files)}):\n\n{listed}\n\n"
        + (f"{refs}\n\n" if refs else "")
        + "<sub>Each run of this job on this item adds a commit to this branch and updates "
        "this pull request. ghapp never pushes to the default branch or force-pushes.</sub>\n\n"
        + PUBLISH_MARKER.format(job_id=job.id, item=item_label(item))
    )


async def _open_or_update(
    gh: GitHubAPI, repo: str, branch: str, base: str, title: str, body: str
) -> tuple[int, str, bool]:
    """(number, URL, opened?) of the open pull request from ``branch``."""
    existing = await _open_pull(gh, repo, branch)
    if existing is None:
        try:
            created = await gh.post(
                f"/repos/{repo}/pulls",
                data={"title": title, "head": branch, "base": base, "body": body},
            )
            return int(created["number"]), str(created["html_url"]), True
        except BadRequest as exc:  # 422: opened meanwhile (a concurrent run): update it
            existing = await _open_pull(gh, repo, branch) if exc.status_code == 422 else None
            if existing is None:
                raise
        except MAYBE_APPLIED:  # maybe opened and not said: look before trying again
            existing = await _open_pull(gh, repo, branch)
            if existing is None:
                raise
    number = int(existing["number"])
    updated = await gh.patch(f"/repos/{repo}/pulls/{number}", data={"body": body})
    return number, str(updated.get("html_url") or existing["html_url"]), False


async def _open_pull(gh: GitHubAPI, repo: str, branch: str) -> dict[str, Any] | None:
    owner = repo.split("/")[0]
    query = urlencode({"head": f"{owner}:{branch}", "state": "open"})
    pulls = await gh.getitem(f"/repos/{repo}/pulls?{query}")
    return pulls[0] if pulls else None
