"""The run queue: a run's whole life, from queued to finished, owned in one place.

* :mod:`~ghapp.runqueue.new` — one shape for a new run (:class:`NewRun`) and one way to
  queue it (:func:`enqueue`, or :func:`enqueue_statements` inside a delivery's group
  commit), with the job's run counter and the concurrency policy of timed firings;
* :mod:`~ghapp.runqueue.claim` — workers claim runs under a lease, renew it, hand runs back;
* :mod:`~ghapp.runqueue.finish` — a run's end, its notifications and the runs it unblocks;
* :mod:`~ghapp.runqueue.manage` — retry and cancel;
* :mod:`~ghapp.runqueue.sql` — the statements, by name.
"""

from ghapp.runqueue.claim import Claimed, Limits, RunQueue, bind_params
from ghapp.runqueue.finish import FINAL, finish_run, queue_dependents
from ghapp.runqueue.new import (
    NewRun,
    active_runs,
    apply_policy,
    cancel_runs,
    enqueue,
    enqueue_statements,
)

__all__ = [
    "FINAL",
    "Claimed",
    "Limits",
    "NewRun",
    "RunQueue",
    "active_runs",
    "apply_policy",
    "bind_params",
    "cancel_runs",
    "enqueue",
    "enqueue_statements",
    "finish_run",
    "queue_dependents",
]
