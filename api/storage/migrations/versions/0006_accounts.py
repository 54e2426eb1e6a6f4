"""People's accounts: users, their sessions, and the throttle on failed sign-ins (api/accounts/).

Revision ID: h16acc_0006_accounts
Revises: 0005_id_keyed_hash
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "h16acc_0006_accounts"
down_revision = "0005_id_keyed_hash"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("locality", sa.String(6), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        _ts("created_at"),
        _ts("last_sign_in_at", nullable=True),
        _ts("disabled_at", nullable=True),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        _ts("created_at"),
        _ts("last_seen_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
    )
    op.create_index("ix_user_sessions_user", "user_sessions", ["user_id"])
    op.create_table(
        "sign_in_throttle",
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        _ts("last_failure_at"),
        _ts("locked_until", nullable=True),
    )


def downgrade() -> None:
    op.drop_table("sign_in_throttle")
    op.drop_index("ix_user_sessions_user", "user_sessions")
    op.drop_table("user_sessions")
    op.drop_table("users")
