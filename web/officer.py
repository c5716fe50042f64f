"""The officer's phone page: the unit's open incidents as cards with their actions."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import Principal
from api.deps import CasesDep, DbDep, HtmxDep
from api.errors import ApiError
from api.services.detail import allowed_actions, incident_detail
from api.services.incidents import list_page
from core.db import Database
from schema.incidents import IncidentDetail, IncidentFilters
from schema.states import OPEN_STATES
from web.staffkit import (
    LIST_LIMIT,
    OFFICER_ROLES,
    OUTCOMES,
    ActionPage,
    action_answer,
    page_user,
    staff_ctx,
    thread_marks,
)
from web.templating import render

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)


def _officer_cards(user: Principal, items: list[Any]) -> list[dict[str, Any]]:
    return [{"i": i, "actions": {a.value for a in allowed_actions(
        user, i.state, i.unit.id if i.unit else None)}} for i in items]


async def _officer_context(db: Database, user: Principal) -> dict[str, Any]:
    page = await list_page(db, user, IncidentFilters(state=list(OPEN_STATES)), LIST_LIMIT)
    return {"cards": _officer_cards(user, page.items), "outcomes": OUTCOMES,
            "form_key": str(uuid.uuid4())}


@router.get("/officer")
async def officer_page(request: Request, db: DbDep, htmx: HtmxDep) -> Response:
    user = await page_user(request, OFFICER_ROLES)
    if isinstance(user, Response):
        return user
    ctx = staff_ctx(request, user, "officer")
    ctx.update(await _officer_context(db, user))
    block = "cards" if htmx else None
    return render(request, "staff/officer.html", ctx, block=block)


@router.get("/officer/incidents/{incident_id}")
async def officer_detail(request: Request, incident_id: str, db: DbDep,
                         cases: CasesDep) -> Response:
    """Photos and the notes so far, opened on demand inside the officer's card."""
    user = await page_user(request, OFFICER_ROLES)
    if isinstance(user, Response):
        return user
    ctx = staff_ctx(request, user, "officer")
    try:
        ctx["d"] = await incident_detail(db, cases, user, str(uuid.UUID(incident_id)))
        ctx["thread"] = thread_marks(ctx["d"].timeline)
    except (ApiError, ValueError):
        ctx["d"] = None
    return render(request, "staff/officer.html", ctx, block="more",
                  status_code=200 if ctx["d"] else 404)


@router.post("/officer/incidents/{incident_id}/actions/{action}")
async def officer_action(request: Request, incident_id: str, action: str, db: DbDep,
                         cases: CasesDep) -> Response:
    async def cards(user: Principal, _detail: IncidentDetail) -> dict[str, Any]:
        return await _officer_context(db, user)

    return await action_answer(request, db, cases, incident_id, action, ActionPage(
        "officer", "staff/officer.html", "cards", "/officer", cards, OFFICER_ROLES))

