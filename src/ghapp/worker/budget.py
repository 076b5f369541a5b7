"""The daily budget: sessions and dollars per UTC day, so nothing runs away."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import col

from ghapp.db import Database
from ghapp.db.models import Session
from ghapp.settings import Settings


async def exhausted(db: Database, settings: Settings, now: datetime) -> str | None:
    """Why no session may start now, or None while the day's budget lasts."""
    if not settings.daily_session_limit and not settings.daily_budget_usd:
        return None
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    async with db.read() as conn:
        count, cost = (
            await conn.execute(
                select(
                    func.count(col(Session.id)), func.coalesce(func.sum(col(Session.cost_usd)), 0.0)
                ).where(col(Session.started_at) >= midnight)
            )
        ).one()
    sessions, dollars = settings.daily_session_limit, settings.daily_budget_usd
    if sessions and count >= sessions:
        return f"daily budget reached: {count} sessions today (limit {sessions})"
    if dollars and float(cost) >= dollars:
        return f"daily budget reached: ${float(cost):.2f} spent today (limit ${dollars:.2f})"
    return None
