"""The .github/ghapp.yml world and its helpers: ``config_world`` is ghapp's app with a
``ConfigSyncer`` against the GitHub stand-in; ``install`` and ``push_file`` deliver the file.

Registered as a plugin in ``conftest.py``, so test modules use ``config_world`` by name.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ghapp.app import create_app
from ghapp.clock import SystemClock
from ghapp.config.schema import CONFIG_PATH
from ghapp.config.sync import ConfigSyncer
from ghapp.db import Database
from ghapp.db.models import ConfigSync
from ghapp.github.app import GitHubApp
from ghapp.github.transport import RetryPolicy
from ghapp.standins.github import GitHubStandIn
from tests.conftest import make_settings
from tests.support import load, send

REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
ADMIN_TOKEN = "admin-token-for-tests"
CREATED = load("installation/created.payload.json")  # installation 957387 with REPO

V1 = """\
version: 1
jobs:
  - name: Triage
    events: [issues.opened]
    command: issue/triage
  - name: Nightly health
    cron: "0 3 * * *"
    target: codebase
    command: codebase/health-check
  - name: Weekly sweep
    cron: "0 9 * * 1"
    filter: "label:bug"
    prompt: Is this still a bug?
"""


def sha(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


@dataclass
class World:
    github: GitHubStandIn
    http: httpx.AsyncClient
    state: Any
    client: GitHubApp
    syncer: ConfigSyncer

    def syncer_with(self, **options: Any) -> ConfigSyncer:
        return ConfigSyncer(
            self.state.db,
            options.pop("clock", SystemClock()),
            self.state.signals,
            self.client,
            self.state.jobs,
            **options,
        )


@pytest.fixture
async def config_world(db_url, db, tmp_path):
    """ghapp's app and a ``ConfigSyncer`` (owner ``w1``); GitHub is the stand-in with
    installation 957387 and ``REPO``, no config file yet."""
    github = GitHubStandIn(app_id=99)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    async with github.serve() as base_url:
        settings = make_settings(
            db_url,
            tmp_path,
            github_api_url=base_url,
            app_id=99,
            private_key=github.private_key_pem,
            admin_token=ADMIN_TOKEN,
        )
        app = create_app(settings, db=db)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            client = GitHubApp(settings, SystemClock(), RetryPolicy(attempts=2, base_delay=0.01))
            state = app.state.ghapp
            syncer = ConfigSyncer(db, SystemClock(), state.signals, client, state.jobs, owner="w1")
            yield World(github, http, state, client, syncer)
            await client.aclose()


def push(
    after: str,
    *,
    modified: tuple[str, ...] = (),
    added: tuple[str, ...] = (),
    removed: tuple[str, ...] = (),
    ref: str = "refs/heads/master",
    repo: tuple[str, int] = (REPO, REPO_ID),
    **changes: Any,
) -> dict[str, Any]:
    data = copy.deepcopy(load("push/with-installation.payload.json"))
    commit = {
        "id": after,
        "tree_id": sha("tree" + after),
        "distinct": True,
        "message": "change",
        "timestamp": "2024-01-01T00:00:00Z",
        "url": f"https://github.com/{repo[0]}/commit/{after}",
        "author": {"name": "C", "email": "c@example.com", "username": "Codertocat"},
        "committer": {"name": "C", "email": "c@example.com", "username": "Codertocat"},
        "added": list(added),
        "modified": list(modified),
        "removed": list(removed),
    }
    data.update(
        ref=ref,
        before=sha("before" + after),
        after=after,
        created=False,
        deleted=False,
        forced=False,
        commits=[commit],
        head_commit=commit,
    )
    data["installation"] = {"id": INSTALLATION}
    data["repository"].update(full_name=repo[0], id=repo[1], name=repo[0].split("/")[1])
    data.update(changes)
    return data


async def install(world: World, content: str | None = V1) -> None:
    if content is not None:
        world.github.add_file(REPO, CONFIG_PATH, content)
    assert (await send(world.http, "installation", CREATED)).status_code == 202
    assert await world.syncer.run_pending() == 1


async def push_file(world: World, label: str, content: str | None, **kind: Any) -> str:
    """A commit on master setting the file to ``content`` (None: removing it), delivered."""
    commit = sha(label)
    world.github.add_file(REPO, "README.md", "# Hello\n", ref=commit)  # the commit exists
    if content is not None:
        world.github.add_file(REPO, CONFIG_PATH, content, ref=commit)
    kind = kind or (
        {"modified": (CONFIG_PATH,)} if content is not None else {"removed": (CONFIG_PATH,)}
    )
    assert (await send(world.http, "push", push(commit, **kind))).status_code == 202
    return commit


async def syncs(db: Database) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(select(ConfigSync).order_by(ConfigSync.id))).all())


def statuses_for(github: GitHubStandIn, commit: str) -> list[tuple[str, str, str]]:
    return [
        (s["context"], s["state"], s["description"]) for s in github.statuses if s["sha"] == commit
    ]
