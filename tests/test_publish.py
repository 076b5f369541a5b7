"""Sessions that change code: a branch pushed to the (bare) repository and a pull request
at the GitHub stand-in, over real git and real HTTP. The bare repository refuses
non-fast-forward pushes, so a force push would fail these tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ghapp.clock import SystemClock
from ghapp.github.app import GitHubApp
from ghapp.github.transport import RetryPolicy
from ghapp.settings import Settings
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from ghapp.worker.checkout import checkout, head_commit
from ghapp.worker.publish import (
    BOT_EMAIL,
    DIFF_LIMIT,
    MOVED,
    Published,
    PublishError,
    branch_name,
    comment_section,
    cut_diff,
    publish_changes,
)

REPO = "Codertocat/Hello-World"
INSTALLATION = 957387
BRANCH = "ghapp/tidy-the-readme/issue-1"
REAL_GIT = shutil.which("git") or "git"  # the tests' own git calls bypass the recording shim


@dataclass
class Job:
    id: int = 5
    name: str = "Tidy the README!"
    task_config: dict[str, Any] = field(default_factory=lambda: {"publish": "pr"})


@dataclass
class Item:  # the fields of ghapp.worker.execute.Item that publishing reads
    kind: str = "issue"
    number: int | None = 1
    title: str = ""
    data: dict[str, Any] | None = None
    fork: bool = False


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": "/nonexistent",
        "GIT_AUTHOR_NAME": "Mona",
        "GIT_AUTHOR_EMAIL": "mona@example.com",
        "GIT_COMMITTER_NAME": "Mona",
        "GIT_COMMITTER_EMAIL": "mona@example.com",
    }
    done = subprocess.run(
        [REAL_GIT, *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


@dataclass
class World:
    github: GitHubStandIn
    client: GitHubApp
    settings: Settings
    bare: Path
    token: str
    calls: Path  # one line per git invocation: its arguments, and whether it carried a token
    tmp: Path

    async def publish(
        self,
        write: dict[str, str] | None = None,
        *,
        job: Job | None = None,
        item: Item | None = None,
        session_id: int = 41,
        edit: bool = False,
        prepare: Any = None,
    ) -> Published:
        """A fresh checkout (as the worker makes it), the session's changes, publishing."""
        item = item or Item()
        pull = item.number if item.kind == "pr" else None
        async with checkout(
            self.settings.git_url, REPO, self.token, pull_number=pull, parent=self.tmp
        ) as work:
            if edit:  # what a session that tidies leaves: README.md edited, a file added
                readme = work / "README.md"
                readme.write_text(
                    readme.read_text() + f"\nChanged by ghapp session {session_id}.\n"
                )
                (work / "ghapp-change.txt").write_text(f"session: {session_id}\n")
            for path, text in (write or {}).items():
                (work / path).parent.mkdir(parents=True, exist_ok=True)
                (work / path).write_text(text)
            if prepare is not None:
                prepare(work)
            gh = await self.client.for_installation(INSTALLATION)
            return await publish_changes(
                gh,
                work,
                repo=REPO,
                default_branch="master",
                token=self.token,
                job=job or Job(),
                item=item,
                settings=self.settings,
                session_id=session_id,
            )

    def log(self, ref: str = BRANCH) -> list[str]:
        return git("--git-dir", str(self.bare), "log", "--format=%H %ae %s", ref).splitlines()

    def refs(self) -> str:
        return git(
            "--git-dir", str(self.bare), "for-each-ref", "--format=%(refname)", "refs/heads/"
        )

    def pushes(self) -> list[str]:
        return [line for line in self.calls.read_text().splitlines() if " push " in f" {line}"]


@pytest.fixture(scope="module")
def app_key() -> str:
    """One App key for the module: generating one per test costs half a second."""
    return GitHubStandIn(app_id=99).private_key_pem


@pytest.fixture
async def world(tmp_path, monkeypatch, app_key):
    calls = tmp_path / "git-calls.txt"
    calls.touch()
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "git").write_text(
        "#!/bin/sh\n"
        'case "$GIT_CONFIG_KEY_0" in http.extraHeader) t=token;; *) t=-;; esac\n'
        f'echo "$t $*" >> {calls}\n'
        f'exec {REAL_GIT} "$@"\n'
    )
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    git_url = bare_repository(
        tmp_path,
        REPO,
        files={"README.md": "# Hello-World\n"},
        pull_requests={2: {"feature.txt": "in PR 2\n"}, 3: {"fork.txt": "in PR 3\n"}},
    )
    bare = tmp_path / "remote" / f"{REPO}.git"
    git("--git-dir", str(bare), "config", "receive.denyNonFastForwards", "true")
    calls.write_text("")  # what follows is publishing's
    github = GitHubStandIn(app_id=99, private_key_pem=app_key)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, default_branch="master")
    github.add_issue(REPO, 1, title="The README is untidy")
    github.add_issue(REPO, 2, title="A feature", pull=True, head="feature")
    github.add_issue(
        REPO, 3, title="From a fork", pull=True, head="patch-1", head_repo="stranger/Hello-World"
    )
    async with github.serve() as base_url:
        settings = Settings(
            _env_file=None,
            app_id=99,
            private_key=github.private_key_pem,
            github_api_url=base_url,
            git_url=git_url,
        )
        client = GitHubApp(settings, SystemClock(), RetryPolicy(attempts=2, base_delay=0.01))
        token = await client.token(INSTALLATION)
        yield World(github, client, settings, bare, token, calls, tmp_path)
        await client.aclose()


def pulls(world: World) -> list[dict[str, Any]]:
    return [i for i in world.github.issues(REPO) if "pull_request" in i and i["number"] > 3]


async def test_a_change_is_pushed_to_its_branch_and_a_pull_request_opened(world) -> None:
    published = await world.publish(edit=True)
    assert (published.action, published.branch) == ("opened", BRANCH)
    assert set(published.files) == {"README.md", "ghapp-change.txt"}
    [commit, base] = world.log()[:2]
    assert commit.split(" ", 2)[1:] == [BOT_EMAIL, "ghapp: Tidy the README! (issue #1)"]
    assert commit.startswith(published.commit)
    assert base == world.log("master")[0]  # on top of the commit the session started from
    message = git("--git-dir", str(world.bare), "log", "-1", "--format=%B", BRANCH)
    assert "session 41" in message and "Refs #1" in message and "job 5" in message
    shown = git("--git-dir", str(world.bare), "show", f"{BRANCH}:README.md")
    assert shown.startswith("# Hello-World\n") and "Changed by ghapp session" in shown
    assert len(world.log("master")) == 1  # the default branch is untouched
    pull = world.github.pull(REPO, published.pr_number)
    assert (pull["head"]["ref"], pull["base"]["ref"]) == (BRANCH, "master")
    assert pull["head"]["repo"]["full_name"] == REPO
    assert pull["title"] == "ghapp: Tidy the README! (issue #1)"
    assert "Fixes #1" in pull["body"] and "`README.md`" in pull["body"]  # closes it
    assert published.pr_url == pull["html_url"]
    link = f"[#{pull['number']}]({pull['html_url']})"
    assert comment_section(published) == f"**Changes:** Opened pull request {link} from `{BRANCH}`."
    # the token: in git's environment for the network, nowhere else
    [push] = world.pushes()
    assert push.startswith("token ") and f"refs/heads/{BRANCH}" in push
    assert "--force" not in push and " +" not in push
    assert world.token not in world.calls.read_text()
    assert world.token not in (world.bare / "config").read_text()
    assert world.token not in pull["body"] + pull["title"] + message
    calls = [
        line.split()[:2]
        for line in world.calls.read_text().splitlines()
        if line.startswith(("token ", "- "))
    ]
    with_token = {command for carried, command in calls if carried == "token"}
    assert with_token == {"clone", "ls-remote", "push"}  # the network; never a local step


async def test_a_second_run_adds_a_commit_and_updates_the_same_pull_request(world) -> None:
    first = await world.publish({"notes.txt": "one\n"}, session_id=41)
    second = await world.publish({"notes.txt": "two\n"}, session_id=42)
    assert (first.action, second.action) == ("opened", "updated")
    assert (second.pr_number, second.pr_url, second.branch) == (
        first.pr_number,
        first.pr_url,
        first.branch,
    )
    assert len(pulls(world)) == 1
    mine = [line for line in world.log() if BOT_EMAIL in line]
    assert [line.split()[0] for line in mine] == [second.commit, first.commit]
    git("--git-dir", str(world.bare), "merge-base", "--is-ancestor", first.commit, second.commit)
    parents = git("--git-dir", str(world.bare), "log", "-1", "--format=%P", BRANCH).split()
    assert parents == [first.commit]  # a plain fast-forward on the first run's commit
    assert git("--git-dir", str(world.bare), "show", f"{BRANCH}:notes.txt") == "two\n"
    assert "Latest session: 42" in world.github.pull(REPO, first.pr_number)["body"]
    assert len(world.github.find_requests("PATCH", rf"/pulls/{first.pr_number}$")) == 1
    assert len(world.github.find_requests("POST", r"/pulls$")) == 1
    # the same proposal again: nothing new to push, the pull request is still updated
    third = await world.publish({"notes.txt": "two\n"}, session_id=43)
    assert (third.action, third.commit, third.pr_number) == ("updated", None, first.pr_number)
    assert len(world.pushes()) == 2


async def test_no_changes_publish_nothing(world) -> None:
    published = await world.publish()
    assert (published.action, published.reason) == ("none", "The session left no changes.")
    assert comment_section(published) == "_The session left no changes._"
    assert "ghapp/" not in world.refs() and world.pushes() == []
    assert world.github.find_requests("GET", r"/pulls") == []


async def test_ignored_files_are_not_changes(world) -> None:
    def ignore(work: Path) -> None:
        git("-C", str(work), "config", "user.name", "x")  # the session fiddling with .git
        (work / ".git" / "info").mkdir(exist_ok=True)
        (work / ".git" / "info" / "exclude").write_text("*.log\n")

    published = await world.publish({"build.log": "noise\n"}, prepare=ignore)
    assert published.action == "opened"  # .git/info/exclude is the checkout's, not ours
    published = await world.publish(
        {".gitignore": "*.log\n", "build.log": "noise\n"}, job=Job(name="other")
    )
    assert published.files == (".gitignore",)


async def test_publishing_is_off_unless_the_job_asks_for_it(world) -> None:
    for config in ({}, {"publish": "yes"}, {"publish": None}):
        published = await world.publish({"notes.txt": "x\n"}, job=Job(task_config=config))
        assert published == Published("none") and comment_section(published) == ""
    assert world.pushes() == [] and world.github.find_requests("GET", r"/pulls") == []


async def test_workflow_changes_are_refused_and_nothing_is_pushed(world) -> None:
    published = await world.publish(
        {"README.md": "better\n", ".github/workflows/ci.yml": "on: push\n"}
    )
    assert published.action == "refused"
    assert "`.github/workflows/ci.yml`" in published.reason
    assert comment_section(published).startswith("**Changes not published:** the session")
    assert "ghapp/" not in world.refs() and world.pushes() == []
    assert world.github.find_requests("POST", r"/pulls") == []
    dry = await world.publish(
        {".github/workflows/x.yml": "on: push\n"}, job=Job(task_config={"publish": "dry_run"})
    )
    assert dry.action == "refused" and dry.diff is None


async def test_a_fork_pull_request_is_refused(world) -> None:
    marked = await world.publish({"fork.txt": "improved\n"}, item=Item("pr", 3, fork=True))
    assert marked.action == "refused" and "fork" in marked.reason
    # a PR found by a scheduled search carries no fork flag: GitHub is asked
    unmarked = await world.publish({"fork.txt": "improved\n"}, item=Item("pr", 3))
    assert unmarked.action == "refused" and "fork" in unmarked.reason
    assert "ghapp/" not in world.refs() and world.pushes() == []
    assert world.github.find_requests("POST", r"/pulls") == []


async def test_a_pull_request_item_gets_a_pull_request_stacked_on_its_branch(world) -> None:
    published = await world.publish({"feature.txt": "in PR 2, tidied\n"}, item=Item("pr", 2))
    assert (published.action, published.branch) == ("opened", "ghapp/tidy-the-readme/pr-2")
    pull = world.github.pull(REPO, published.pr_number)
    assert (pull["head"]["ref"], pull["base"]["ref"]) == (published.branch, "feature")
    assert "Refs #2" in pull["body"] and pull["title"] == "ghapp: Tidy the README! (PR #2)"
    parent = git("--git-dir", str(world.bare), "log", "-1", "--format=%P", published.branch)
    assert (
        parent.strip() == git("--git-dir", str(world.bare), "rev-parse", "refs/pull/2/head").strip()
    )


async def test_codebase_item(world) -> None:
    published = await world.publish(
        {"CLAUDE.md": "short\n"}, item=Item("codebase", None), job=Job(name="Weekly optimize")
    )
    assert published.branch == "ghapp/weekly-optimize/codebase"
    pull = world.github.pull(REPO, published.pr_number)
    assert pull["title"] == "ghapp: Weekly optimize (codebase)" and "Refs #" not in pull["body"]


async def test_dry_run_returns_the_diff_and_pushes_nothing(world) -> None:
    published = await world.publish(
        {"README.md": "# Hello-World\n\nTidier.\n", "new.txt": "untracked\n"},
        job=Job(task_config={"publish": "dry_run"}),
    )
    assert (published.action, published.branch) == ("dry_run", BRANCH)
    assert "+Tidier." in published.diff and "+++ b/new.txt" in published.diff
    assert "diff --git a/README.md b/README.md" in published.diff
    section = comment_section(published)
    assert section.startswith("**Changes (dry run, nothing was pushed)**")
    assert "```diff\ndiff --git" in section and section.endswith("\n```")
    assert "ghapp/" not in world.refs() and world.pushes() == []
    assert [r for r in world.github.requests if "/pulls" in r.path] == []


def test_a_long_diff_is_cut_with_a_note_and_fenced_safely() -> None:
    diff = "".join(f"+line {n} ```` backticks\n" for n in range(10_000))
    cut = cut_diff(diff)
    assert len(cut) <= DIFF_LIMIT and cut.endswith(" are shown)\n")
    assert f"the diff has {len(diff):,} characters" in cut
    assert cut_diff("+short\n") == "+short\n"
    section = comment_section(Published("dry_run", branch="b", diff=cut))
    assert "`````diff\n" in section and section.endswith("\n`````")
    assert len(section) < 65_536


async def test_the_session_committing_its_work_itself_is_published_all_the_same(world) -> None:
    def commit(work: Path) -> None:
        git("-C", str(work), "add", "-A")
        git("-C", str(work), "commit", "-qm", "session commit")

    published = await world.publish({"notes.txt": "committed\n"}, prepare=commit)
    assert published.action == "opened" and published.files == ("notes.txt",)
    [mine, base] = world.log()[:2]
    assert BOT_EMAIL in mine and base == world.log("master")[0]  # its commit is not pushed


async def test_a_tampered_git_config_cannot_redirect_the_push_or_run_commands(world) -> None:
    """What a session with only file-editing tools could write into the checkout's .git."""
    trap, ran = world.tmp / "trap", world.tmp / "ran"
    ran.mkdir()

    def tamper(work: Path) -> None:
        spy = world.tmp / "spy"
        spy.write_text(f'#!/bin/sh\nenv > {ran}/"$(basename "$0")-$$"\ncat\n')
        spy.chmod(0o755)
        (work / ".git" / "config").write_text(
            f"[core]\n\tbare = false\n\thooksPath = hooks\n\tfsmonitor = {spy}\n"
            f'[url "file://{trap}/"]\n\tinsteadOf = file://\n'
            f'[filter "steal"]\n\tclean = {spy}\n\trequired = true\n'
        )
        (work / ".gitattributes").write_text("* filter=steal\n")
        (work / "hooks").mkdir()
        (work / "hooks" / "pre-push").write_text(f"#!/bin/sh\nenv > {ran}/pre-push\n")
        (work / "hooks" / "pre-push").chmod(0o755)

    published = await world.publish({"notes.txt": "x\n"}, prepare=tamper)
    assert published.action == "opened"
    listed = git("--git-dir", str(world.bare), "ls-tree", "--name-only", BRANCH).split()
    assert "notes.txt" in listed and ".gitattributes" in listed  # pushed where it belongs
    assert list(ran.iterdir()) == []  # no filter, fsmonitor or hook ran
    assert not trap.exists()


async def test_someone_elses_commit_on_the_branch_is_never_overwritten(world) -> None:
    first = await world.publish({"notes.txt": "one\n"})
    clone = world.tmp / "person"
    git("clone", "-q", "--branch", BRANCH, f"file://{world.bare}", str(clone))
    (clone / "notes.txt").write_text("fixed by a person\n")
    git("-C", str(clone), "commit", "-qam", "a fix")
    git("-C", str(clone), "push", "-q", "origin", BRANCH)
    theirs = world.log()[0]
    again = await world.publish({"notes.txt": "two\n"})
    assert again.action == "refused" and "Mona" in again.reason
    assert world.log()[0] == theirs and len(world.pushes()) == 1
    assert first.pr_number is not None


async def test_when_the_default_branch_moved_the_pull_request_still_shows_only_the_proposal(
    world,
) -> None:
    first = await world.publish({"notes.txt": "one\n"})
    clone = world.tmp / "person"
    git("clone", "-q", f"file://{world.bare}", str(clone))
    (clone / "other.txt").write_text("meanwhile on master\n")
    git("-C", str(clone), "add", "-A")
    git("-C", str(clone), "commit", "-qm", "meanwhile")
    git("-C", str(clone), "push", "-q", "origin", "master")
    master = world.log("master")[0].split()[0]
    second = await world.publish({"notes.txt": "two\n"})
    assert second.action == "updated" and second.pr_number == first.pr_number
    parents = git("--git-dir", str(world.bare), "log", "-1", "--format=%P", BRANCH).split()
    assert parents == [first.commit, master]  # fast-forward, and based on today's master
    changed = git("--git-dir", str(world.bare), "diff", "--name-only", f"master...{BRANCH}")
    assert changed.split() == ["notes.txt"]


def test_branch_names() -> None:
    job = Job(name="  Weekly: Optimize CLAUDE.md — please!!  ")
    assert branch_name(job, Item("issue", 12)) == "ghapp/weekly-optimize-claude-md-please/issue-12"
    assert branch_name(Job(name="x" * 60), Item("pr", 7)) == f"ghapp/{'x' * 40}/pr-7"
    assert branch_name(Job(id=9, name="¿¿"), Item("custom", None)) == "ghapp/job-9/custom"
    assert branch_name(Job(name="a" * 39 + " b"), Item("codebase", None)) == (
        f"ghapp/{'a' * 39}/codebase"
    )


async def test_git_failures_raise_a_clear_error_without_the_token(world) -> None:
    def remote_gone(_work: Path) -> None:  # after the checkout, before publishing
        shutil.rmtree(world.bare)

    with pytest.raises(PublishError, match="publishing: git ls-remote failed") as failed:
        await world.publish({"notes.txt": "x\n"}, prepare=remote_gone)
    assert world.token not in str(failed.value)


async def test_a_nested_git_repository_is_refused(world) -> None:
    def nest(work: Path) -> None:
        git("init", "-q", str(work / "vendor" / "lib"))
        (work / "vendor" / "lib" / "x.txt").write_text("x\n")
        git("-C", str(work / "vendor" / "lib"), "add", "-A")
        git("-C", str(work / "vendor" / "lib"), "commit", "-qm", "x")

    published = await world.publish({"notes.txt": "x\n"}, prepare=nest)
    assert published.action == "refused" and "`vendor/lib`" in published.reason
    assert world.pushes() == []


# -- follow-ups: publishing from a checkout of the branch itself ------------------------------


async def follow_up(world: World, text: str, session_id: int, before: Any = None) -> Published:
    """A follow-up's checkout of the branch, its change, publishing to that branch
    (``before``: what happens between the checkout and publishing, e.g. another push)."""
    async with checkout(
        world.settings.git_url, REPO, world.token, ref=BRANCH, parent=world.tmp
    ) as work:
        base = await head_commit(work)
        (work / "notes.txt").write_text(text)
        if before is not None:
            await before()
        gh = await world.client.for_installation(INSTALLATION)
        return await publish_changes(
            gh,
            work,
            repo=REPO,
            default_branch="master",
            token=world.token,
            job=Job(),
            item=Item(kind="pr", number=None),
            settings=world.settings,
            session_id=session_id,
            base_commit=base,
            branch=BRANCH,
        )


async def test_a_follow_up_adds_a_fast_forward_commit_that_keeps_the_branch_s_base(world) -> None:
    first = await world.publish({"notes.txt": "one\n"}, session_id=41)
    later = await follow_up(world, "one\ntwo\n", session_id=42)
    assert (later.action, later.pr_number, later.branch) == ("updated", first.pr_number, BRANCH)
    parents = git("--git-dir", str(world.bare), "log", "-1", "--format=%P", BRANCH).split()
    assert parents == [first.commit]  # one parent: the tip it was checked out at
    message = git("--git-dir", str(world.bare), "log", "-1", "--format=%B", BRANCH)
    assert f"Ghapp-Base: {world.log('master')[0].split()[0]}" in message  # the branch's base
    assert later.files == ("notes.txt",)  # what this session changed
    assert len(pulls(world)) == 1


async def test_a_follow_up_never_undoes_a_push_made_while_it_ran(world) -> None:
    await world.publish({"notes.txt": "one\n"}, session_id=41)
    pushed: list[Published] = []

    async def another_follow_up() -> None:
        pushed.append(await follow_up(world, "one\nfrom the other session\n", session_id=42))

    late = await follow_up(world, "one\ntwo\n", session_id=43, before=another_follow_up)
    assert pushed[0].action == "updated"
    assert late.action == "refused" and late.reason == MOVED.format(branch=BRANCH)
    shown = git("--git-dir", str(world.bare), "show", f"{BRANCH}:notes.txt")
    assert shown == "one\nfrom the other session\n"  # the other session's push stands
