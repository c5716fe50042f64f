"""stored push endpoints take the one spelling the API now stores (issue #20, follow-up)

Since 0007 a subscription stores the URL rebuilt from the approved parts (host lower
case, no `:443`), and an unsubscribe looks the endpoint up by that spelling. A row stored
before then in another spelling of the same endpoint (`https://FCM.googleapis.com:443/x`)
would never be found to be removed. This rewrites each such row to its rebuilt URL; where
that would repeat a row the same incident already has, the older spelling's row goes, with
what is queued for it (the kept row receives the same pushes). Rows the grammar refuses
were deleted by 0007; one that still fails is left to the worker's check.

Revision ID: 0008_push_endpoint_spelling
Revises: 0007_push_endpoint_shape
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.push_endpoint import EndpointRefused, parse_endpoint

revision: str = '0008_push_endpoint_spelling'
down_revision: str | None = '0007_push_endpoint_shape'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _spelled(endpoint: str) -> str | None:
    try:
        return parse_endpoint(endpoint).url
    except EndpointRefused:
        return None


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, incident_id, endpoint FROM push_subscriptions")).all()
    taken = {(row.incident_id, row.endpoint) for row in rows}
    for row in rows:
        spelled = _spelled(row.endpoint)
        if spelled is None or spelled == row.endpoint:
            continue
        if (row.incident_id, spelled) in taken:
            conn.execute(sa.text("DELETE FROM push_outbox WHERE subscription_id = :id"),
                         {"id": row.id})
            conn.execute(sa.text("DELETE FROM push_subscriptions WHERE id = :id"),
                         {"id": row.id})
            continue
        conn.execute(sa.text("UPDATE push_subscriptions SET endpoint = :e WHERE id = :id"),
                     {"e": spelled, "id": row.id})
        taken.add((row.incident_id, spelled))


def downgrade() -> None:
    pass  # the older spellings named the same endpoints
