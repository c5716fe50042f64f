"""Staff reads of incidents: the list (read model, cursor pagination), the CSV export and
one incident (read model with the live fields of the workflow). An officer sees only the
own unit's incidents (api.scope): anything else is 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse

from api.deps import CasesDep, CurrentUser, DbDep
from api.etag import etag
from api.services import incidents as service
from api.services.detail import incident_detail, visible_row
from api.services.reporter_location import reporter_location
from schema.incidents import IncidentDetail, IncidentFilters, IncidentPage, ListOrder
from schema.locations import ReporterLocationOut
from schema.places import WARD_CODE_MAX
from schema.states import Category, State
from schema.text import Line

router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}


def incident_filters(
    state: Annotated[list[State] | None, Query(description="one or more states")] = None,
    ward: Annotated[int | None, Query(ge=0, le=WARD_CODE_MAX)] = None,
    unit: Annotated[Line | None, Query(max_length=64)] = None,
    category: Category | None = None,
    priority: Annotated[int | None, Query(ge=1, le=4)] = None,
    overdue: bool | None = None,
    q: Annotated[Line | None, Query(max_length=200)] = None,
) -> IncidentFilters:
    return IncidentFilters(state=state or [], ward=ward, unit=unit, category=category,
                           priority=priority, overdue=overdue, q=q)


FiltersDep = Annotated[IncidentFilters, Depends(incident_filters)]


@router.get("/incidents", response_model=IncidentPage, responses={401: _ERR, 422: _ERR})
async def list_incidents(
    db: DbDep, user: CurrentUser, filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[ListOrder, Query(
        description="newest (default), oldest, or urgency: overdue first, then priority "
                    "(1 first), then the oldest")] = ListOrder.NEWEST,
) -> IncidentPage:
    """From the read model in `sort` order (a cursor belongs to its order); an officer
    sees the own unit's incidents."""
    return await service.list_page(db, user, filters, limit, cursor, sort)


@router.get("/incidents/export.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}, 401: _ERR})
async def export_csv(
    db: DbDep, user: CurrentUser, filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> StreamingResponse:
    """The same filters and scope as the list, as CSV (UTF-8 with BOM for spreadsheets)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        service.export_rows(db, user, filters, limit), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="incidents-{stamp}.csv"'})


@router.get("/incidents/{incident_id}", response_model=IncidentDetail,
            responses={401: _ERR, 404: _ERR, 503: _ERR})
async def get_incident(incident_id: uuid.UUID, db: DbDep, cases: CasesDep,
                       user: CurrentUser, response: Response) -> IncidentDetail:
    """The incident from the read model with the live state of its workflow, and
    `allowed_actions` for the caller (`live` false when Temporal cannot answer). The ETag
    is the case version, for If-Match on actions."""
    detail = await incident_detail(db, cases, user, str(incident_id))
    response.headers["ETag"] = etag(detail.version)
    return detail


@router.get("/incidents/{incident_id}/reporter-location",
            response_model=ReporterLocationOut | None, responses={401: _ERR, 404: _ERR})
async def get_reporter_location(incident_id: uuid.UUID, db: DbDep,
                                user: CurrentUser) -> ReporterLocationOut | None:
    """The reporter's live location (latest and trail, newest first), `null` when they
    share none; 404 for an incident the caller may not see (api/scope.py)."""
    async with db.session() as s:
        await visible_row(s, user, str(incident_id))
        return await reporter_location(s, str(incident_id))

