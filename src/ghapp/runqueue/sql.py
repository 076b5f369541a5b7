"""The run queue's SQL, by name: what each statement does is read here, in one place.

Standard SQL on both backends with ``:name`` parameters; ``{lock}`` is ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL (SQLite's write transaction, ``BEGIN IMMEDIATE``, makes a claim
atomic there). ``INSERT_RUN`` is made from :data:`ghapp.runqueue.new.COLUMNS`, so a column
added to runs is added to it by adding it there.
"""

from __future__ import annotations

# Take the next claimable run: queued and due, or running with a lapsed lease (its worker
# died). The limits are part of the claim, so they hold across any number of workers.
CLAIM = """
UPDATE runs SET status = 'running', lease_owner = :owner, lease_expires_at = :lease_until,
       started_at = COALESCE(started_at, :now),
       attempt = CASE WHEN status = 'running' THEN attempt + 1 ELSE attempt END
WHERE id = (
    SELECT r.id FROM runs r
    WHERE ((r.status = 'queued' AND r.run_after <= :now)
           OR (r.status = 'running' AND r.lease_expires_at < :now))
      AND (:global_limit = 0 OR (
          SELECT count(*) FROM runs busy
          WHERE busy.status = 'running' AND busy.lease_expires_at >= :now AND busy.id <> r.id
      ) < :global_limit)
      AND (r.installation_id IS NULL OR (
          SELECT count(*) FROM runs busy
          WHERE busy.installation_id = r.installation_id AND busy.status = 'running'
            AND busy.lease_expires_at >= :now AND busy.id <> r.id
      ) < :per_installation)
    ORDER BY r.run_after, r.id
    LIMIT 1 {lock}
)
RETURNING id, job_id, attempt, status
"""

# Renew the lease of a run this worker holds.
HEARTBEAT = """
UPDATE runs SET lease_expires_at = :lease_until
WHERE id = :run_id AND lease_owner = :owner AND status = 'running'
"""

# Hand a run back to the queue (graceful shutdown) without counting an attempt.
RELEASE = """
UPDATE runs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL
WHERE id = :run_id AND lease_owner = :owner AND status = 'running'
"""

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
