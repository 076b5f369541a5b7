"""runs (queued_at) index for today's counts

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_queued_at", "runs", ["queued_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_queued_at", table_name="runs")
