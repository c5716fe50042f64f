"""reporters' Web Push subscriptions, the push outbox, and shared live locations

Revision ID: 0005_push_subscriptions
Revises: 0004_d9_citizen_additions
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import schema.tables

revision: str = '0005_push_subscriptions'
down_revision: str | None = '0004_d9_citizen_additions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_UTC = schema.tables.UTCDateTime(timezone=True)
_STR = sqlmodel.sql.sqltypes.AutoString()


def upgrade() -> None:
    op.create_table(
        'push_subscriptions',
        sa.Column('id', _STR, nullable=False),
        sa.Column('incident_id', _STR, nullable=False),
        sa.Column('endpoint', sa.Text(), nullable=False),
        sa.Column('p256dh', _STR, nullable=False),
        sa.Column('auth', _STR, nullable=False),
        sa.Column('silent', sa.Boolean(), nullable=False),
        sa.Column('created_at', _UTC, nullable=False),
        sa.Column('last_sent_at', _UTC, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('incident_id', 'endpoint',
                            name='uq_push_subscriptions_incident_endpoint'),
    )
    op.create_index('ix_push_subscriptions_incident_id', 'push_subscriptions',
                    ['incident_id'])
    op.create_table(
        'push_outbox',
        sa.Column('id', _BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column('subscription_id', _STR, nullable=False),
        sa.Column('incident_id', _STR, nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('title', _STR, nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('urgent', sa.Boolean(), nullable=False),
        sa.Column('created_at', _UTC, nullable=False),
        sa.Column('next_attempt_at', _UTC, nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('subscription_id', 'seq', name='uq_push_outbox_subscription_seq'),
    )
    op.create_index('ix_push_outbox_subscription_id', 'push_outbox', ['subscription_id'])
    op.create_index('ix_push_outbox_next_attempt_at', 'push_outbox', ['next_attempt_at'])
    op.create_table(
        'reporter_locations',
        sa.Column('id', _BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column('incident_id', _STR, nullable=False),
        sa.Column('lat', sa.Float(), nullable=False),
        sa.Column('lon', sa.Float(), nullable=False),
        sa.Column('accuracy_m', sa.Float(), nullable=False),
        sa.Column('at', _UTC, nullable=False),
        sa.Column('received_at', _UTC, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_reporter_locations_incident_received', 'reporter_locations',
                    ['incident_id', 'received_at'])


def downgrade() -> None:
    op.drop_index('ix_reporter_locations_incident_received', table_name='reporter_locations')
    op.drop_table('reporter_locations')
    op.drop_index('ix_push_outbox_next_attempt_at', table_name='push_outbox')
    op.drop_index('ix_push_outbox_subscription_id', table_name='push_outbox')
    op.drop_table('push_outbox')
    op.drop_index('ix_push_subscriptions_incident_id', table_name='push_subscriptions')
    op.drop_table('push_subscriptions')
