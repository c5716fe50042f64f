"""action receipts: the first answer to a staff action per Idempotency-Key

Revision ID: 0005_intake_action_receipts
Revises: 0005_push_subscriptions
Create Date: 2026-11-29 13:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import schema.tables

revision: str = '0005_intake_action_receipts'
down_revision: str | None = '0005_push_subscriptions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('action_receipts',
    sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('idem_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('etag', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', schema.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('incident_id', 'action', 'idem_key')
    )


def downgrade() -> None:
    op.drop_table('action_receipts')
