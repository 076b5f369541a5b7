"""jobs.max_budget_usd; sessions.usage, permission_denials, result_subtype

A job caps what one session may spend (passed to Claude Code as ``--max-budget-usd``); a
session keeps what the CLI's ``result`` event reported: the token usage, the tool calls it
refused (``permission_denials``) and how it ended (``subtype``).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("max_budget_usd", sa.Float(), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("usage", JSON, nullable=True))
        batch.add_column(sa.Column("permission_denials", JSON, nullable=True))
        batch.add_column(
            sa.Column("result_subtype", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("result_subtype")
        batch.drop_column("permission_denials")
        batch.drop_column("usage")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("max_budget_usd")
