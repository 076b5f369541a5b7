"""What a run counts of its sessions, and how the run ends for it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ghapp.db.models import RunStatus
from ghapp.runners.base import Outcome
from ghapp.worker.pool import RunResult
from ghapp.worker.prepare import Item

ERROR_KEPT = 4000  # characters of a run's error (one line per failed item)


@dataclass
class Tally:
    found: dict[str, int]  # items_found, items_skipped: what preparing the run found
    processed: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    errors: list[str] = field(default_factory=list)
    budget_note: str | None = None  # why the day's budget stopped the run, if it did

    def add(self, item: Item, outcome: Outcome) -> None:
        self.cost_usd += outcome.cost_usd
        if outcome.ok:
            self.processed += 1
        else:
            self.failed += 1
            self.errors.append(f"{item.label}: {outcome.error}")

    def result(self, *, cancelled: bool) -> RunResult:
        counters = {
            **self.found,
            "items_processed": self.processed,
            "items_failed": self.failed,
            "cost_usd": self.cost_usd,
        }
        if cancelled:
            return RunResult(RunStatus.cancelled, error="cancelled", counters=counters)
        if self.budget_note and not self.processed and not self.failed:
            return RunResult(RunStatus.skipped, error=self.budget_note, counters=counters)
        status = RunStatus.failed if self.failed else RunStatus.completed
        errors = [*self.errors, self.budget_note] if self.budget_note else self.errors
        return RunResult(status, error="\n".join(errors)[:ERROR_KEPT] or None, counters=counters)
