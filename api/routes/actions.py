"""Staff actions on an incident (workflow updates through api.cases)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header
from fastapi.responses import JSONResponse

from api.deps import CasesDep, CurrentUser, DbDep
from api.etag import etag, expected_version
from api.services.actions import MAX_IDEMPOTENCY_KEY, take_action
from schema.actions import StaffAction
from schema.incidents import IncidentDetail
from schema.states import Action

router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}


@router.post("/incidents/{incident_id}/actions/{action}", response_model=IncidentDetail,
             responses={401: _ERR, 403: _ERR, 404: _ERR, 409: _ERR, 412: _ERR, 422: _ERR,
                        503: _ERR})
async def act(
    incident_id: uuid.UUID, action: StaffAction, db: DbDep, cases: CasesDep,
    user: CurrentUser, body: Annotated[dict[str, Any] | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key",
                                                  max_length=MAX_IDEMPOTENCY_KEY)] = None,
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=40)] = None,
) -> JSONResponse:
    """Take an action on the incident (a workflow update). The same Idempotency-Key again
    returns the first result and changes nothing. With `If-Match` (the ETag of GET), a
    case changed meanwhile is refused with 412, naming what changed, by whom and when; an
    action that would change nothing (routing to the unit already assigned) is 409."""
    detail = await take_action(db, cases, user, str(incident_id), Action(action.value), body,
                               idempotency_key, expected_version(if_match))
    return JSONResponse(detail.model_dump(mode="json"),
                        headers={"ETag": etag(detail.version)})
