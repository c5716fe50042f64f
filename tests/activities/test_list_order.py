"""The staff list's three orders on PostgreSQL and SQLite, through the list's own query
(`list_page`): urgency is overdue first, then priority (1 first), then the oldest; newest
and oldest by time. Paging one row at a time gives the same order as one page, a cursor
belongs to its order, and "overdue" is judged once for the whole walk."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col

from activities.projection import ProjectionActivities
from api.errors import ApiError
from api.services.incidents import list_page, state_counts
from core.db import Database
from schema.incidents import IncidentFilters, ListOrder
from schema.states import State
from schema.tables import Incident
from tests.activities.test_search import ELSEWHERE, _operator
from tests.workflows.factories import incident_input, receipt

T0 = datetime(2021, 4, 1, tzinfo=UTC)


async def _open(db: Database, text: str, minutes: int, priority: int,
                deadline_in_min: float, level: int = 0) -> str:
    """An open report made `minutes` after T0 with its priority and deadline (from now)."""
    inp = incident_input(description=text, address=None, location=ELSEWHERE,
                         received_at=T0 + timedelta(minutes=minutes))
    await ProjectionActivities(db).project(receipt(inp, state=State.RECEIVED,
                                                   created_at=inp.received_at))
    async with db.session() as s:
        await s.execute(update(Incident).where(col(Incident.id) == inp.incident_id).values(
            priority=priority, escalation_level=level,
            deadline=datetime.now(UTC) + timedelta(minutes=deadline_in_min)))
        await s.commit()
    return inp.incident_id


async def _walk(db: Database, f: IncidentFilters, order: ListOrder) -> list[str]:
    seen: list[str] = []
    page = await list_page(db, _operator(), f, 1, None, order)
    seen += [str(i.id) for i in page.items]
    while page.next_cursor:
        page = await list_page(db, _operator(), f, 1, page.next_cursor, order)
        seen += [str(i.id) for i in page.items]
    return seen


async def test_urgency_newest_and_oldest(any_db: Database) -> None:
    marker = uuid.uuid4().hex[:10]
    text = f"Thứ tự {marker}"
    tree = await _open(any_db, text, 0, 3, 10)  # the oldest: a fallen tree, P3
    fire = await _open(any_db, text, 5, 1, 1)  # a fire with people trapped, P1
    late = await _open(any_db, text, 3, 4, -2)  # P4 but overdue (deadline passed)
    escalated = await _open(any_db, text, 9, 2, 5, level=1)  # overdue by escalation
    fight = await _open(any_db, text, 7, 1, 2)  # P1, newer than the fire
    theft = await _open(any_db, text, 8, 2, 3)
    ids = [tree, fire, late, escalated, fight, theft]
    try:
        f = IncidentFilters(q=marker)
        urgent = [escalated, late, fire, fight, theft, tree]
        whole = await list_page(any_db, _operator(), f, 50, None, ListOrder.URGENCY)
        assert [str(i.id) for i in whole.items] == urgent
        assert [i.overdue for i in whole.items] == [True, True, False, False, False, False]
        assert await _walk(any_db, f, ListOrder.URGENCY) == urgent
        by_time = [tree, late, fire, fight, theft, escalated]
        assert await _walk(any_db, f, ListOrder.OLDEST) == by_time
        assert await _walk(any_db, f, ListOrder.NEWEST) == by_time[::-1]
        # The API's default is still newest first.
        default = await list_page(any_db, _operator(), f, 50)
        assert [str(i.id) for i in default.items] == by_time[::-1]

        # A row falling overdue between two pages is met once, where it stood.
        async with any_db.session() as s:
            await s.execute(update(Incident).where(col(Incident.id) == tree).values(
                deadline=datetime.now(UTC) + timedelta(seconds=1.5)))
            await s.commit()
        first = await list_page(any_db, _operator(), f, 3, None, ListOrder.URGENCY)
        await asyncio.sleep(1.6)
        rest = await list_page(any_db, _operator(), f, 50, first.next_cursor,
                               ListOrder.URGENCY)
        assert [str(i.id) for i in first.items + rest.items] == urgent
        assert rest.items[-1].overdue  # shown as it is now

        # A cursor belongs to its order.
        assert first.next_cursor
        with pytest.raises(ApiError) as refused:
            await list_page(any_db, _operator(), f, 3, first.next_cursor, ListOrder.NEWEST)
        assert refused.value.status == 422

        counts, overdue = await state_counts(any_db, _operator(), f)
        assert counts == {State.RECEIVED: 6} and overdue == 3  # the tree now too
    finally:
        async with any_db.session() as s:  # out of every other test's open lists
            await s.execute(update(Incident).where(col(Incident.id).in_(ids)).values(
                state=State.REJECTED.value, is_open=False))
            await s.commit()
