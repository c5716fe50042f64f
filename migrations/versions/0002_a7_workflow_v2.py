"""workflow v2: case version, silent SOS, alerts keyed by event with reminders

Revision ID: 0002_a7_workflow_v2
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schema.tables

revision: str = '0002_a7_workflow_v2'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('incidents') as batch:
        batch.add_column(sa.Column('version', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('silent', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('reminders', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('last_reminded_at', schema.tables.UTCDateTime(timezone=True),
                                   nullable=True))
    op.create_index('ix_alerts_incident_seq', 'alerts', ['incident_id', 'seq'])


def downgrade() -> None:
    op.drop_index('ix_alerts_incident_seq', table_name='alerts')
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('last_reminded_at')
        batch.drop_column('reminders')
        batch.drop_column('seq')
    with op.batch_alter_table('incidents') as batch:
        batch.drop_column('silent')
        batch.drop_column('version')
