"""runs (status, id) index for the filtered run history

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_status_id", "runs", ["status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_status_id", table_name="runs")
