"""The run queue's SQL, by name: what each statement does is read here, in one place.

Standard SQL on both backends with ``:name`` parameters. Claiming, heartbeats, hand-backs
and retries are a leased queue's (:mod:`ghapp.db.lease`, which builds and names them): the
runs declare here what they are (:data:`RUNS`), with the running limits as their own claim
condition. ``INSERT_RUN`` is made from :data:`ghapp.runqueue.new.COLUMNS`, so a column
added to runs is added to it by adding it there.
"""

from __future__ import annotations

from ghapp.db.lease import LeasedTable

# The runs' lease (see ghapp.db.lease): queued → running under a lease. A claim sets
# started_at once, and a takeover (the run was running: its worker died) counts an attempt;
# a retry (GitHub or database trouble) counts one too and says why it waits.
RUNS = LeasedTable(
    name="runs",
    ready="queued",
    held="running",
    due="run_after",
    order=("run_after", "id"),
    returning=("id", "job_id", "attempt", "status"),
    # The limits are part of the claim, so they hold across any number of workers: the
    # runs running on the whole database (:global_limit, 0: none) and per installation.
    condition="""
(:global_limit = 0 OR (
    SELECT count(*) FROM runs busy
    WHERE busy.status = 'running' AND busy.lease_expires_at >= :now AND busy.id <> c.id
) < :global_limit)
AND (c.installation_id IS NULL OR (
    SELECT count(*) FROM runs busy
    WHERE busy.installation_id = c.installation_id AND busy.status = 'running'
      AND busy.lease_expires_at >= :now AND busy.id <> c.id
) < :per_installation)
""",
    on_claim=(
        "started_at = COALESCE(started_at, :now)",
        "attempt = CASE WHEN status = 'running' THEN attempt + 1 ELSE attempt END",
    ),
    on_retry=("attempt = attempt + 1", "error = :error", "retrying_since = :retrying_since"),
)

# A job's counter of runs queued, bumped with every run queued for it.
COUNT_RUN = "UPDATE jobs SET run_count = run_count + 1 WHERE id = :job_id"


def insert_run(columns: tuple[str, ...]) -> str:
    """Queue one run (the webhook's group commit). A delivery may not know the
    installation: then it is the repository's."""
    values = [
        "COALESCE(:installation_id, (SELECT installation_id FROM repositories WHERE id = :repo_id))"
        if name == "installation_id"
        else f":{name}"
        for name in columns
    ]
    # Column names come from our own COLUMNS tuple, never from input.
    return f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join(values)})"  # noqa: S608


# -- pull requests' new heads and re-runs asked for on GitHub (ghapp.webhooks.checks) -------

# A job's runs on one pull request (their item is the PR, as the event or re-run made it).
# ``->>`` reads a JSON member on both backends (SQLite 3.38+, PostgreSQL's jsonb).
_SAME_PR = (
    "job_id = :job_id AND repo_id = :repo_id AND item ->> 'item_kind' = 'pr' "
    "AND CAST(item ->> 'number' AS INTEGER) = :number"
)
# A new push to the PR supersedes them: queued ones end cancelled at once; running ones
# are asked to stop, with the reason kept in ``error`` (their check run says it).
SUPERSEDE_QUEUED = (
    "UPDATE runs SET status = 'cancelled', completed_at = :now, error = :reason "  # noqa: S608
    f"WHERE status = 'queued' AND {_SAME_PR}"
)
SUPERSEDE_RUNNING = (
    "UPDATE runs SET cancel_requested_at = :now, error = :reason "  # noqa: S608
    f"WHERE status = 'running' AND cancel_requested_at IS NULL AND {_SAME_PR}"
)

# An issue's assignment runs (any job's), when the app's bot user is unassigned: queued
# ones end cancelled at once, running ones are asked to stop; ``error`` says who did it.
_ASSIGNED_ISSUE = (
    "repo_id = :repo_id AND trigger_type = 'assignment' AND item ->> 'item_kind' = 'issue' "
    "AND CAST(item ->> 'number' AS INTEGER) = :number"
)
UNASSIGN_QUEUED = (
    "UPDATE runs SET status = 'cancelled', completed_at = :now, error = :reason "  # noqa: S608
    f"WHERE status = 'queued' AND {_ASSIGNED_ISSUE}"
)
UNASSIGN_RUNNING = (
    "UPDATE runs SET cancel_requested_at = :now, error = :reason "  # noqa: S608
    f"WHERE status = 'running' AND cancel_requested_at IS NULL AND {_ASSIGNED_ISSUE}"
)


def rerun(columns: tuple[str, ...], which: str) -> str:
    """Queue again the runs ``which`` selects (as ``r``), as a retry of each: same job,
    repository, trigger detail and item (a search run's item: ``:item``, the pull request
    the re-run was asked on). Only for an active job whose repository the delivery's
    installation still covers."""
    values = {
        "job_id": "r.job_id",
        "repo_id": "r.repo_id",
        "installation_id": ":installation_id",
        "trigger_type": "'retry'",
        "trigger_detail": "r.trigger_detail",
        "delivery_id": ":delivery_id",
        "scheduled_for": "NULL",
        # A search run's item is JSON null (or SQL NULL in older rows): no item_kind.
        "item": "CASE WHEN r.item ->> 'item_kind' IS NULL THEN :item ELSE r.item END",
        "retry_of_id": "r.id",
        "status": "'queued'",
        "error": "NULL",
        "attempt": "1",
        "cost_usd": "0.0",
        "queued_at": ":now",
        "run_after": ":now",
        "completed_at": "NULL",
    }
    selected = [values.get(name, "0") for name in columns]  # the items_* counters: 0
    # Column names come from our own COLUMNS tuple and ``which`` from this module.
    return (
        f"INSERT INTO runs ({', '.join(columns)}) SELECT {', '.join(selected)} "  # noqa: S608
        "FROM runs r JOIN jobs j ON j.id = r.job_id "
        f"WHERE r.repo_id = :repo_id AND j.status = 'active' AND ({which}) "
        "AND EXISTS (SELECT 1 FROM repositories p WHERE p.id = :repo_id "
        "AND p.installation_id = :installation_id AND p.active)"
    )


# check_run.rerequested: the run the check run was made for (its external_id).
RERUN_ONE = "r.id = :run_id"
# check_suite.rerequested: each job's latest run with a check run on the suite's head.
RERUN_SUITE = (
    "r.id IN (SELECT max(s.run_id) FROM sessions s JOIN runs x ON x.id = s.run_id "
    "WHERE s.head_sha = :head_sha AND s.check_run_id IS NOT NULL AND x.repo_id = :repo_id "
    "GROUP BY x.job_id)"
)
# The jobs' counters of runs queued, for the runs this delivery queued.
COUNT_RERUNS = (
    "UPDATE jobs SET run_count = run_count + 1 "
    "WHERE id IN (SELECT job_id FROM runs WHERE delivery_id = :delivery_id)"
)
