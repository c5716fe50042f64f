"""a fingerprint of each report's request, so a reused report_id with another body is refused

Revision ID: 0003_d9_report_fingerprint
Revises: 0002_d9_sessions
Create Date: 2026-11-29 11:05:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003_d9_report_fingerprint'
down_revision: str | None = '0002_d9_sessions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_column('fingerprint')
