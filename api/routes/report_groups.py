"""Flood groups of reports (schema/abuse.py): list them, reject one in one action, or
declare it not spam. Command-centre staff only (api/scope.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CasesDep, CurrentUser, DbDep, LangDep
from api.services import report_groups
from schema.abuse import GroupRejectIn, GroupRejectResult, ReportGroupOut

router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}


@router.get("/report-groups", response_model=list[ReportGroupOut], responses={401: _ERR})
async def list_groups(db: DbDep, user: CurrentUser,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50
                      ) -> list[ReportGroupOut]:
    """Open flood groups (reports that came in a burst from one device, phone or address)
    that still hold a report nobody took up, newest first. An officer sees none."""
    return await report_groups.open_groups(db, user, limit)


@router.get("/report-groups/{group_id}", response_model=ReportGroupOut,
            responses={401: _ERR, 404: _ERR})
async def get_group(db: DbDep, user: CurrentUser, group_id: str) -> ReportGroupOut:
    """One flood group with its reports, resolved or not."""
    return await report_groups.get_group(db, user, group_id)


@router.post("/report-groups/{group_id}/reject", response_model=GroupRejectResult,
             responses={401: _ERR, 403: _ERR, 404: _ERR, 409: _ERR, 422: _ERR})
async def reject_group(db: DbDep, cases: CasesDep, user: CurrentUser, lang: LangDep,
                       group_id: str, body: GroupRejectIn) -> GroupRejectResult:
    """Reject every report of the group still `received`, each through its own workflow
    with `reason` (operator, supervisor). 200 even when some could not be rejected:
    `failed` says which and why (taken up already, joined after you looked — when
    `versions` is sent —, changed since: `stale`, not in the read model yet,
    `already_rejected` by somebody else). 409 `group_resolved` (with `resolved`,
    `resolved_by`, `resolved_at`) when somebody resolved the group first or is rejecting
    it at this moment."""
    return await report_groups.reject_group(db, cases, user, group_id, body, lang)


@router.post("/report-groups/{group_id}/not-spam", response_model=ReportGroupOut,
             responses={401: _ERR, 403: _ERR, 404: _ERR, 409: _ERR})
async def clear_group(db: DbDep, user: CurrentUser, group_id: str) -> ReportGroupOut:
    """"Not spam": the group is no longer shown as one and its reports lose the mark
    (operator, supervisor). 409 `group_resolved` as for reject."""
    return await report_groups.clear_group(db, user, group_id)
