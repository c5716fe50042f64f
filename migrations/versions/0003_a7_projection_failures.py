"""dead-letter table for read-model writes the database refuses

Revision ID: 0003_a7_projection_failures
Revises: 0002_a7_workflow_v2
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import schema.tables

revision: str = '0003_a7_projection_failures'
down_revision: str | None = '0002_a7_workflow_v2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'projection_failures',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('action', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('created_at', schema.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', schema.tables.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_projection_failures_incident_id', 'projection_failures',
                    ['incident_id'])


def downgrade() -> None:
    op.drop_index('ix_projection_failures_incident_id', table_name='projection_failures')
    op.drop_table('projection_failures')
