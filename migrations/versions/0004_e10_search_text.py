"""incidents.search_text: folded text for Vietnamese search (case, Unicode form and tone
marks ignored), with a pg_trgm GIN index on PostgreSQL

Revision ID: 0004_e10_search_text
Revises: 0003_a7_projection_failures
Create Date: 2026-11-29 11:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from schema.search import search_document

revision: str = '0004_e10_search_text'
down_revision: str | None = '0003_a7_projection_failures'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def _has_trgm(bind: sa.engine.Connection) -> bool:
    return bind.execute(sa.text(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar() > 0


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), nullable=False,
                                      server_default=''))
    # Existing rows: the same folding the projection does from now on.
    incidents = sa.table('incidents', sa.column('id', sa.String), sa.column('description'),
                         sa.column('address'), sa.column('search_text'))
    last = ''
    while True:
        rows = bind.execute(sa.select(incidents.c.id, incidents.c.description,
                                      incidents.c.address)
                            .where(incidents.c.id > last).order_by(incidents.c.id)
                            .limit(BATCH)).all()
        if not rows:
            break
        for r in rows:
            bind.execute(incidents.update().where(incidents.c.id == r.id)
                         .values(search_text=search_document(r.description, r.address)))
        last = rows[-1].id
    if bind.dialect.name == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_incidents_description_fts")
        if _has_trgm(bind):
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            op.execute("CREATE INDEX ix_incidents_search_trgm ON incidents "
                       "USING gin (search_text gin_trgm_ops)")
    # SQLite: LIKE over the folded column (a scan; the embedded default is for one machine).


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_incidents_search_trgm")
        op.execute("CREATE INDEX ix_incidents_description_fts ON incidents "
                   "USING gin (to_tsvector('simple', description))")
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('search_text')
