"""citizen additions per report, for the per-token limits on POST /track/{token}/info

Revision ID: 0004_d9_citizen_additions
Revises: 0003_d9_report_fingerprint
Create Date: 2026-11-29 11:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import schema.tables

revision: str = '0004_d9_citizen_additions'
down_revision: str | None = '0003_d9_report_fingerprint'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('citizen_additions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('report_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', schema.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('chars', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('citizen_additions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_citizen_additions_report_id'), ['report_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('citizen_additions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_citizen_additions_report_id'))
    op.drop_table('citizen_additions')
