"""Server-Sent Events for staff: new incidents, state changes, escalations.

The stream polls the `staff_events` table (written by the workflow's activities), so it
works with any number of API processes. Officers get only their unit's events. A client
that reconnects with `Last-Event-ID` gets what it missed. A stream whose sign-in is
revoked (logout, sign out everywhere) ends within SESSION_RECHECK_S.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import func, select
from sqlmodel import col
from sse_starlette.sse import EventSourceResponse

from api import scope, sessions
from api.deps import CurrentUser, DbDep
from schema.tables import StaffEvent
from schema.text import ascii_int

router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}
MAX_ID = 2**62
POLL_S = 1.0  # how often an open stream looks for new events
SESSION_RECHECK_S = 15.0  # how soon an open stream notices that its session was revoked


@router.get("/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}, 401: _ERR})
async def staff_events(
    request: Request, db: DbDep, user: CurrentUser,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID,
                                       description="start after this event id")] = None,
    max_events: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    max_seconds: Annotated[float | None, Query(gt=0, le=3600)] = None,
) -> EventSourceResponse:
    """`event:` is the kind (incident.new, incident.changed, alert.raised,
    alert.resolved), `id:` the feed position, `data:` JSON. `max_events`/`max_seconds`
    end the stream early (for simple clients and tests)."""
    start = after
    if start is None:
        start = ascii_int(last_event_id, 0, MAX_ID)
    if start is None:
        async with db.session() as s:
            start = (await s.execute(select(func.coalesce(func.max(col(StaffEvent.id)), 0)))
                     ).scalar_one()

    async def stream() -> AsyncIterator[dict]:
        last = start
        sent = 0
        recheck_at = time.monotonic() + SESSION_RECHECK_S
        deadline = time.monotonic() + max_seconds if max_seconds else None
        while True:
            stmt = scope.staff_events(select(StaffEvent), user).where(
                col(StaffEvent.id) > last).order_by(col(StaffEvent.id))
            async with db.session() as s:
                rows = (await s.execute(stmt.limit(500))).scalars().all()
            for ev in rows:
                last = ev.id
                yield {"id": str(ev.id), "event": ev.kind,
                       "data": json.dumps({"id": ev.id, "kind": ev.kind, "at": ev.at.isoformat(),
                                           "incident_id": ev.incident_id, "unit_id": ev.unit_id,
                                           "ward_code": ev.ward_code, **(ev.payload or {})},
                                          ensure_ascii=False)}
                sent += 1
                if max_events and sent >= max_events:
                    return
            if deadline and time.monotonic() >= deadline:
                return
            if await request.is_disconnected():
                return
            if time.monotonic() >= recheck_at:  # signed out meanwhile: the stream ends
                if not await sessions.still_signed_in(db, user.id, user.sid,
                                                      user.token_version):
                    return
                recheck_at = time.monotonic() + SESSION_RECHECK_S
            await asyncio.sleep(POLL_S)

    return EventSourceResponse(stream(), ping=15)
