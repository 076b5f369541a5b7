"""sessions.structured_result, structured_error: a command's structured result

A command may declare an output schema (``issue/triage`` does); its session keeps the JSON
object the model returned once ghapp checked it against that schema, or why there is none.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("structured_result", JSON, nullable=True))
        batch.add_column(sa.Column("structured_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("structured_error")
        batch.drop_column("structured_result")
