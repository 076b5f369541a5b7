"""sessions.item_number indexed: a mention's follow-up lookup on the webhook path

Whether ``@<app-slug>`` on an issue continues a session that worked on it is read while the
delivery is stored; without this index that read scanned the sessions of the repository
(45 ms on SQLite, 33 ms on PostgreSQL with 50,000 sessions; bench/follow_ups.py).

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_sessions_item_number", "sessions", ["item_number"])


def downgrade() -> None:
    op.drop_index("ix_sessions_item_number", table_name="sessions")
