"""config syncs (requests to read .github/ghapp.yml)

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import ghapp.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_table(
        "config_syncs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.BigInteger(), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=True),
        sa.Column("sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("delivery_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", ghapp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("run_after", ghapp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("queued_at", ghapp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", ghapp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", ghapp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo_id", "sha", name="uq_config_syncs_repo_id_sha"),
    )
    op.create_index("ix_config_syncs_repo_id", "config_syncs", ["repo_id"], unique=False)
    op.create_index(
        "ix_config_syncs_status_run_after", "config_syncs", ["status", "run_after"], unique=False
    )
    op.create_index(
        "uq_config_syncs_running_repo_id",
        "config_syncs",
        ["repo_id"],
        unique=True,
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )


def downgrade() -> None:
    op.drop_index("uq_config_syncs_running_repo_id", table_name="config_syncs")
    op.drop_index("ix_config_syncs_status_run_after", table_name="config_syncs")
    op.drop_index("ix_config_syncs_repo_id", table_name="config_syncs")
    op.drop_table("config_syncs")
