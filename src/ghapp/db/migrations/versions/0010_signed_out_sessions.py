"""signed_out_sessions: dashboard sessions ended by signing out

Signing out used to delete the cookie in the browser only; a copy of it stayed valid until
it expired. Now the session's digest is kept here until then, and the cookie is refused.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ghapp.db.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signed_out_sessions",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", ghapp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_hash"),
    )
    op.create_index(
        "ix_signed_out_sessions_expires_at", "signed_out_sessions", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_signed_out_sessions_expires_at", table_name="signed_out_sessions")
    op.drop_table("signed_out_sessions")
