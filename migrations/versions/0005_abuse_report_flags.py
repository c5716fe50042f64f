"""report sources, flags and flood groups: per-source limits that mark, never refuse

Revision ID: 0005_abuse_report_flags
Revises: 0005_intake_action_receipts
Create Date: 2026-11-29 14:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import schema.tables

revision: str = '0005_abuse_report_flags'
down_revision: str | None = '0005_intake_action_receipts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STR = sqlmodel.sql.sqltypes.AutoString
_TZ = schema.tables.UTCDateTime


def upgrade() -> None:
    op.create_table('report_sources',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('report_id', _STR(), nullable=False),
    sa.Column('kind', _STR(), nullable=False),
    sa.Column('key', _STR(), nullable=False),
    sa.Column('at', _TZ(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_report_sources_key_at', 'report_sources', ['kind', 'key', 'at'])
    op.create_index(op.f('ix_report_sources_report_id'), 'report_sources', ['report_id'])
    op.create_index(op.f('ix_report_sources_at'), 'report_sources', ['at'])
    op.create_table('flood_groups',
    sa.Column('id', _STR(), nullable=False),
    sa.Column('kind', _STR(), nullable=False),
    sa.Column('key', _STR(), nullable=False),
    sa.Column('first_at', _TZ(timezone=True), nullable=False),
    sa.Column('last_at', _TZ(timezone=True), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('resolved', _STR(), nullable=True),
    sa.Column('resolved_by', _STR(), nullable=True),
    sa.Column('resolved_at', _TZ(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_flood_groups_key'), 'flood_groups', ['key'])
    op.create_table('report_flags',
    sa.Column('report_id', _STR(), nullable=False),
    sa.Column('suspected_spam', sa.Boolean(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('flood_group', _STR(), nullable=True),
    sa.Column('flagged_at', _TZ(timezone=True), nullable=False),
    sa.Column('cleared_by', _STR(), nullable=True),
    sa.Column('cleared_at', _TZ(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('report_id')
    )
    op.create_index(op.f('ix_report_flags_flood_group'), 'report_flags', ['flood_group'])


def downgrade() -> None:
    op.drop_table('report_flags')
    op.drop_table('flood_groups')
    op.drop_table('report_sources')
