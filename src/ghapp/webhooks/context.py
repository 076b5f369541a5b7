"""What every delivery handler receives besides the event itself."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from cachetools import TTLCache

from ghapp.db.batch import Statement
from ghapp.webhooks.normalize import ItemEvent

if TYPE_CHECKING:
    from ghapp.triggers.index import JobIndex


class KnownRows:
    """What this process last wrote for a row, so unchanged rows are not rewritten.

    Most events carry their repository; rewriting its unchanged row on every delivery
    costs as much as storing the delivery. Entries expire, so a row changed by another
    process is rewritten from the next event within ``ttl`` seconds at worst.
    """

    def __init__(self, size: int = 50_000, ttl: float = 300.0) -> None:
        self._rows: TTLCache[Hashable, Hashable] = TTLCache(size, ttl)

    def unchanged(self, key: Hashable, values: Hashable) -> bool:
        return self._rows.get(key) == values

    def forget(self, key: Hashable) -> None:
        self._rows.pop(key, None)

    def remember(self, rows: list[tuple[Hashable, Hashable]]) -> None:
        for key, values in rows:
            self._rows[key] = values


@dataclass
class DeliveryContext:
    """Handlers decide; they do not do I/O.

    A handler looks at the event (and ``item``, its normalised form) and appends the
    writes it wants to ``statements``. The store then applies them in the transaction
    that records the delivery, and only if the delivery is new — so a redelivery never
    acts twice, and nothing is applied for a delivery that is not stored. No GitHub API
    call ever happens here: GitHub drops deliveries not answered within 10 s.
    """

    received_at: datetime
    item: ItemEvent | None
    installation_id: int | None  # as the event carries it (None for a plain repo webhook)
    known: KnownRows = field(default_factory=KnownRows)
    jobs: JobIndex | None = None  # which jobs events and commands start
    app_id: int | None = None  # this GitHub App's id: check runs it made may be re-run
    statements: list[Statement] = field(default_factory=list)
    rows_written: list[tuple[Hashable, Hashable]] = field(default_factory=list)
    runs_queued: int = 0
    cancels_requested: bool = False  # running runs were asked to stop (a PR's new push)
    config_syncs_queued: int = 0  # .github/ghapp.yml reads for workers (ghapp.config)

    def add(self, statement: Statement) -> None:
        self.statements.append(statement)
