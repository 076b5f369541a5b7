"""notification attempt log

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows get an empty log; the default stays on the server only for them.
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(
            sa.Column(
                "attempt_log",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("attempt_log", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("attempt_log")
