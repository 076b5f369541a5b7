"""jobs.checks; sessions.check_run_id, head_sha: a pull request's sessions as check runs

A job says whether its sessions on pull requests show as check runs (on unless turned off);
a session keeps the check run it made and the head commit it is on, so a retried run edits
the same check run, and a re-run asked for a whole check suite finds its sessions.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("checks", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("check_run_id", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("head_sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    op.create_index("ix_sessions_head_sha", "sessions", ["head_sha"])


def downgrade() -> None:
    op.drop_index("ix_sessions_head_sha", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("head_sha")
        batch.drop_column("check_run_id")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("checks")
