"""redeliveries and loop_leases: recovering webhook deliveries GitHub could not make

GitHub does not retry a failed delivery. A worker lists the app's recent deliveries and
asks GitHub to send the failed ones ghapp never stored again, once per GUID (a row in
``redeliveries``), from one process at a time (the ``delivery_recovery`` row in
``loop_leases``).

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import ghapp.db.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "redeliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guid", sa.String(length=64), nullable=False),
        sa.Column("github_delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("failed_status_code", sa.Integer(), nullable=False),
        sa.Column("delivered_at", ghapp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requested_at", ghapp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("guid"),
    )
    op.create_index("ix_redeliveries_requested_at", "redeliveries", ["requested_at"], unique=False)
    op.create_table(
        "loop_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("expires_at", ghapp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("covered_until", ghapp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("loop_leases")
    op.drop_index("ix_redeliveries_requested_at", table_name="redeliveries")
    op.drop_table("redeliveries")
