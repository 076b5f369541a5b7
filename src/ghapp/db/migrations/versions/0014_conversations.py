"""Conversations with the agent: mentions, assignment, follow-ups, structured actions

Jobs opt in to ``@<app-slug>`` mentions and to issues assigned to the app's bot user, and
say whether they accept follow-ups (on unless turned off); a job may declare its own output
schema and what ghapp does with the structured result. A session records the session it
continues, the pull request and branch it published to, and what it did with its result;
its transcript is kept in a table of its own so a follow-up can resume it.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

import ghapp.db.types

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("mention_trigger", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("assignment_trigger", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("follow_ups", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("output_schema", JSON, nullable=True))
        batch.add_column(sa.Column("structured_actions", JSON, nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("structured_actions", JSON, nullable=True))
        batch.add_column(
            sa.Column(
                "parent_session_id",
                sa.Integer(),
                sa.ForeignKey(
                    "sessions.id", name="fk_sessions_parent_session_id", ondelete="SET NULL"
                ),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("pr_number", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("branch", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )
    op.create_index("ix_sessions_parent_session_id", "sessions", ["parent_session_id"])
    op.create_index("ix_sessions_pr_number", "sessions", ["pr_number"])
    op.create_table(
        "session_transcripts",
        sa.Column(
            "session_id",
            sa.Integer(),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("agent_session_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", ghapp.db.types.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("session_transcripts")
    op.drop_index("ix_sessions_pr_number", table_name="sessions")
    op.drop_index("ix_sessions_parent_session_id", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("branch")
        batch.drop_column("pr_number")
        batch.drop_constraint("fk_sessions_parent_session_id", type_="foreignkey")
        batch.drop_column("parent_session_id")
        batch.drop_column("structured_actions")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("structured_actions")
        batch.drop_column("output_schema")
        batch.drop_column("follow_ups")
        batch.drop_column("assignment_trigger")
        batch.drop_column("mention_trigger")
