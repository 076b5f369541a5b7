"""The follow-up lookup on the webhook path, with 100,000 runs and 50,000 sessions.

Run ``python bench/follow_ups.py [--backend both] [--lookups 300] [--runs 100000]``.

Method
------
Whether a comment continues an earlier session is decided while the delivery is stored
(``ghapp.webhooks.followups.find_follow_up``: one indexed query). The data set is
``bench/api.py``'s (1,000 jobs over four repositories, runs over 90 days, sessions on
them); one session in twenty is marked as having opened a pull request (``pr_number``,
``branch``), as publishing jobs leave them. Then, one after the other, ``--lookups`` times
each:

* **reply on ghapp's PR**: a reply in a review thread on a pull request a session opened
  (found: the newest session there);
* **mention on a worked item**: ``@app`` on an issue where a session left its tracking
  comment (found);
* **mention elsewhere**: ``@app`` on an issue no session worked on (the query finds
  nothing; the comment goes on to mention jobs).

A comment that is neither (no mention, not a thread reply) makes no query at all. It prints
p50 / p99 / max per kind and checks each lookup found what it should.

Exit status: 0 whatever the figures are; 1 if a lookup found the wrong thing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import REPO_IDS, build_data, load, pg_database  # bench/api.py, beside this one

from ghapp.db import Database
from ghapp.webhooks.followups import find_follow_up
from ghapp.webhooks.normalize import ItemEvent

PR_SHARE = 20  # one session in this many opened a pull request
PR_BASE = 900_000  # pull request numbers ghapp opened (apart from the items' numbers)


def comment(repo_id: int, kind: str, number: int, event: str, reply_to: int | None) -> ItemEvent:
    return ItemEvent(
        event=event,
        action="created",
        delivery_id="bench",
        installation_id=None,
        repo_id=repo_id,
        repo_full_name="bench-org/repo",
        default_branch="main",
        item_kind=kind,
        number=number,
        title="t",
        body="",
        html_url="",
        state="open",
        labels=(),
        author_login="someone",
        actor_login="maintainer",
        actor_is_bot=False,
        author_association="MEMBER",
        comment_id=1,
        comment_body="@app also handle the empty list",
        in_reply_to_id=reply_to,
    )


def mark_pull_requests(data: Any, rng: random.Random) -> list[tuple[int, int]]:
    """Give every PR_SHARE-th session a pull request; (repo id, number) of each."""
    repo_of = {run["id"]: run["repo_id"] for run in data.runs}
    opened = []
    for index, session in enumerate(data.sessions):
        session.update(pr_number=None, branch=None)  # one shape for every row inserted
        if index % PR_SHARE == 0 and repo_of.get(session["run_id"]) is not None:
            number = PR_BASE + index
            session.update(pr_number=number, branch=f"ghapp/bench/pr-{number}")
            opened.append((repo_of[session["run_id"]], number))
    rng.shuffle(opened)
    return opened


def worked_items(data: Any) -> list[tuple[int, int]]:
    repo_of = {run["id"]: run["repo_id"] for run in data.runs}
    return [
        (repo_of[s["run_id"]], s["item_number"])
        for s in data.sessions
        if s["item_kind"] == "issue" and s["comment_id"] and repo_of.get(s["run_id"])
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def time_lookups(url: str, cases: dict[str, list[tuple[ItemEvent, bool]]]) -> bool:
    db = Database(url)
    correct = True
    try:
        for name, items in cases.items():
            for item, _ in items[:5]:  # warm the pool and the caches, untimed
                await find_follow_up(db, item, "also handle the empty list")
            times, hits = [], 0
            for item, expected in items:
                started = time.perf_counter()
                found = await find_follow_up(db, item, "also handle the empty list")
                times.append((time.perf_counter() - started) * 1000)
                hits += found is not None
                # A paused job's session is found but not continued: only a hit where
                # nothing can be found is wrong.
                correct &= expected or found is None
            print(
                f"  {name:<26} p50 {percentile(times, 0.5):6.2f} ms   "
                f"p99 {percentile(times, 0.99):6.2f} ms   max {max(times):6.2f} ms   "
                f"follow-ups {hits}/{len(items)}"
            )
    finally:
        await db.dispose()
    return correct


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    data = build_data(args.jobs, args.runs, args.runs // 2, args.seed)
    opened = mark_pull_requests(data, rng)
    worked = worked_items(data)
    n = args.lookups
    cases = {
        "reply on ghapp's PR": [
            (comment(repo, "pr", number, "pull_request_review_comment", 7), True)
            for repo, number in opened[:n]
        ],
        "mention on a worked item": [
            (comment(repo, "issue", number, "issue_comment", None), True)
            for repo, number in rng.sample(worked, min(n, len(worked)))
        ],
        "mention elsewhere": [
            (comment(rng.choice(REPO_IDS), "issue", 5_000_000 + i, "issue_comment", None), False)
            for i in range(n)
        ],
    }
    ok = True
    with tempfile.TemporaryDirectory() as directory:
        backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
        for backend in backends:
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
            else:
                url = asyncio.run(pg_database(create=True))
            migrated, inserted = asyncio.run(load(url, data))
            print(
                f"\n== {backend} == {len(data.runs):,} runs, {len(data.sessions):,} sessions "
                f"({len(opened):,} opened a PR), loaded in {migrated + inserted:.1f} s"
            )
            ok &= asyncio.run(time_lookups(url, cases))
            if backend == "postgresql":
                asyncio.run(pg_database(create=False))
    print("\nevery lookup found what it should" if ok else "\nA LOOKUP FOUND THE WRONG THING")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
