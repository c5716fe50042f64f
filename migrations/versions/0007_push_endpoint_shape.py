"""push subscriptions whose endpoint the one grammar refuses are deleted (issue #20)

Such a row could make the worker connect to a host the check never approved (a backslash,
percent-escape or `;` in the host). The worker now checks every endpoint again before it
sends; this removes what is already stored, with what is queued for it, so nothing waits
on a subscription that can never be sent. Rows are read in the grammar of
core/push_endpoint.py as it is when this runs; an allowed host list is configuration, so
it is left to the worker's check.

Revision ID: 0007_push_endpoint_shape
Revises: 0006_citizen_push_expiry
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.push_endpoint import EndpointRefused, parse_endpoint

revision: str = '0007_push_endpoint_shape'
down_revision: str | None = '0006_citizen_push_expiry'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _refused(endpoint: str) -> bool:
    try:
        parse_endpoint(endpoint)
        return False
    except EndpointRefused:
        return True


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, endpoint FROM push_subscriptions")).all()
    bad = [row.id for row in rows if _refused(row.endpoint)]
    for sub_id in bad:
        conn.execute(sa.text("DELETE FROM push_outbox WHERE subscription_id = :id"),
                     {"id": sub_id})
        conn.execute(sa.text("DELETE FROM push_subscriptions WHERE id = :id"), {"id": sub_id})


def downgrade() -> None:
    pass  # deleted rows are not brought back
