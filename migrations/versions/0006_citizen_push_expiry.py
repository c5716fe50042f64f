"""push subscriptions keep the browser's expirationTime (the worker drops expired ones)

Revision ID: 0006_citizen_push_expiry
Revises: 0005_abuse_report_flags
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schema.tables

revision: str = '0006_citizen_push_expiry'
down_revision: str | None = '0005_abuse_report_flags'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('push_subscriptions') as batch:
        batch.add_column(sa.Column('expires_at', schema.tables.UTCDateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('push_subscriptions') as batch:
        batch.drop_column('expires_at')
