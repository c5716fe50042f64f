"""The first answer to a staff action sent with an Idempotency-Key, kept in SQL
(`action_receipts`), so the same key again gets the same status and body, also after the
incident ended.

While the workflow runs, Temporal already dedupes an update by its id
(`<action>:<key>`): a repeat gets the first update's result. That ends with the run, and
the answer the client saw is built after the update (the incident as GET shows it), so
the answer itself is kept here once the outcome is known: done (200 with the incident)
or refused by the workflow (403/409/412/422). Nothing is kept for an answer given before
the workflow was asked (a bad body, a role that may never act: the same request gets
the same answer anyway) nor for a 503 (the outcome is not known; the client retries).

When the outcome became known but the answer was never kept (the update timed out at
the API, the process died, the database failed just then), the workflow's event says
it: every event an update records carries its update id in `data.request`
(workflows/incident.py), so `applied` finds it in the read model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col

from api import idempotency
from api.errors import ApiError
from core.db import Database
from schema.incidents import IncidentDetail
from schema.tables import ActionReceipt, IncidentEvent

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Key:
    """Where a keyed action's answer is kept, and the print of the request that made it."""

    incident_id: str
    action: str
    idem_key: str
    fingerprint: str

    @property
    def update_id(self) -> str:
        """The workflow update id (Temporal dedupes on it while the run lasts)."""
        return f"{self.action}:{self.idem_key}"


async def first_answer(db: Database, key: Key) -> IncidentDetail | None:
    """The kept answer for `key`: the incident (200), None when there is none yet; a kept
    refusal is raised again as it was. Raises idempotency.KeyReused (409) when the key
    was used for another request."""
    async with db.session() as s:
        kept = await s.get(ActionReceipt, (key.incident_id, key.action, key.idem_key))
    if kept is None:
        return None
    idempotency.check_action(kept.fingerprint, key.fingerprint)
    if kept.status == 200:
        return IncidentDetail.model_validate(kept.body)
    b = kept.body
    raise ApiError(kept.status, b["error"], b["vi"], b["en"], fields=b.get("fields"),
                   **(b.get("extra") or {}))


async def applied(db: Database, key: Key) -> bool:
    """Whether the workflow recorded an event for this key's update (it was applied)."""
    async with db.session() as s:
        rows = (await s.execute(select(col(IncidentEvent.data)).where(
            col(IncidentEvent.incident_id) == key.incident_id,
            col(IncidentEvent.actor_role) != "system"))).scalars().all()
    return any((data or {}).get("request") == key.update_id for data in rows)


async def keep_answer(db: Database, key: Key, detail: IncidentDetail) -> None:
    """Keep the 200 answer (the incident as it was answered)."""
    await _keep(db, key, 200, detail.model_dump(mode="json"), f'"v{detail.version}"')


async def keep_refusal(db: Database, key: Key, refusal: ApiError) -> None:
    """Keep the workflow's refusal, both languages."""
    await _keep(db, key, refusal.status, {
        "error": refusal.error, "vi": refusal.vi, "en": refusal.en,
        "fields": refusal.fields, "extra": _json_ready(refusal.extra)}, None)


def _json_ready(extra: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | type(None)) else str(v)
            for k, v in extra.items()}


async def _keep(db: Database, key: Key, status: int, body: dict[str, Any],
                etag: str | None) -> None:
    """Insert the receipt unless one is there (a concurrent repeat got the same outcome
    from Temporal). A failed write is logged, never turned into an error: the answer is
    true, and a repeat still finds the outcome (the update-id dedupe, or `applied`)."""
    try:
        async with db.session() as s:
            s.add(ActionReceipt(incident_id=key.incident_id, action=key.action,
                                idem_key=key.idem_key, fingerprint=key.fingerprint,
                                status=status, body=body, etag=etag))
            await s.commit()
    except IntegrityError:
        pass
    except SQLAlchemyError as exc:
        log.warning("action receipt not kept", incident_id=key.incident_id,
                    action=key.action, error=f"{exc.__class__.__name__}: {str(exc)[:200]}")
