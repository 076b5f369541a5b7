"""All delivery handlers, one router per concern, combined here (as bedevere does).

Handlers are ``async def handler(event: sansio.Event, ctx: DeliveryContext)``; they run
inside the transaction that stores the delivery.
"""

from __future__ import annotations

from gidgethub import routing

from ghapp.config import webhooks as config
from ghapp.webhooks import checks, installations, triggers
from ghapp.webhooks.normalize import ITEM_EVENTS

router = routing.Router(installations.router, triggers.router, checks.router, config.router)

# Events ghapp acts on; anything else is stored with outcome "ignored".
HANDLED_EVENTS = (
    frozenset(
        {"ping", "installation", "installation_repositories", "push", "check_run", "check_suite"}
    )
    | ITEM_EVENTS
)
