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
