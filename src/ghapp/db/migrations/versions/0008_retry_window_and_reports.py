"""runs.retrying_since (retries by time), sessions.report_text / reported_at

A run that meets GitHub or database trouble is retried until a window has passed since the
trouble began (``retrying_since``), not a number of times. A session's finished comment is
stored with it (``report_text``) and marked when it reached GitHub (``reported_at``), so a
failed edit is retried on its own and the session is never run again to get it.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ghapp.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("retrying_since", ghapp.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("report_text", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("reported_at", ghapp.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("reported_at")
        batch.drop_column("report_text")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("retrying_since")
