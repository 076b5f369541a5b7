"""What every delivery handler receives besides the event itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ghapp.db.batch import Statement
from ghapp.webhooks.normalize import ItemEvent


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
    statements: list[Statement] = field(default_factory=list)
    runs_queued: int = 0

    def add(self, statement: Statement) -> None:
        self.statements.append(statement)
