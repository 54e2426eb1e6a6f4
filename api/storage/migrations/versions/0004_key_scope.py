"""Locality scope of API keys, and the submitter's scope on simulation jobs.

Keys issued before this revision, and the jobs they submitted, become national (100000):
that is what they could see before, so nobody loses access on upgrade. Narrow them by
issuing scoped keys (``jiuzhu keys create --locality CODE``) and revoking the old ones.

Revision ID: 0004_key_scope
Revises: 0003_simulations
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_key_scope"
down_revision = "0003_simulations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("locality", sa.String(6), nullable=False, server_default="100000"))
    op.add_column("simulations", sa.Column("caller_scope", sa.String(6), nullable=False, server_default="100000"))


def downgrade() -> None:
    with op.batch_alter_table("simulations") as batch:
        batch.drop_column("caller_scope")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("locality")
