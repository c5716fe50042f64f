"""Staff actions on an incident (workflow updates through api.cases)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header

from api.deps import CasesDep, CurrentUser, DbDep
from api.services.actions import take_action
from schema.actions import StaffAction
from schema.incidents import IncidentDetail
from schema.states import Action

router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}


@router.post("/incidents/{incident_id}/actions/{action}", response_model=IncidentDetail,
             responses={401: _ERR, 403: _ERR, 404: _ERR, 409: _ERR, 422: _ERR, 503: _ERR})
async def act(
    incident_id: uuid.UUID, action: StaffAction, db: DbDep, cases: CasesDep,
    user: CurrentUser, body: Annotated[dict[str, Any] | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> IncidentDetail:
    """Take an action on the incident (a workflow update). The same Idempotency-Key again
    returns the first result and changes nothing."""
    return await take_action(db, cases, user, str(incident_id), Action(action.value), body,
                             idempotency_key)
