"""What every delivery handler receives besides the event itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from ghapp.webhooks.normalize import ItemEvent


@dataclass
class DeliveryContext:
    """Handlers run inside the transaction that stores the delivery.

    They may only touch the database through ``conn`` (no GitHub API calls: the
    webhook must answer GitHub within its 10 s budget, and we aim for milliseconds).
    """

    conn: AsyncConnection
    delivery_row_id: int
    received_at: datetime
    item: ItemEvent | None
    installation_id: int | None
    runs_queued: list[int] = field(default_factory=list)
    acted: bool = False  # a handler did something with this event
