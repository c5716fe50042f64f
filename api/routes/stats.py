"""Counts, response-time percentiles and SLA compliance (api.services.stats)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, DbDep, SettingsDep
from api.services.stats import incident_stats
from schema.places import WARD_CODE_MAX
from schema.stats import GroupBy, StatsOut
from schema.text import Line
from schema.times import Moment

router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}


@router.get("/stats", response_model=StatsOut, responses={401: _ERR, 422: _ERR})
async def stats(db: DbDep, user: CurrentUser, settings: SettingsDep,
                from_: Annotated[Moment | None, Query(alias="from")] = None,
                to: Moment | None = None, group_by: GroupBy | None = None,
                ward: Annotated[int | None, Query(ge=0, le=WARD_CODE_MAX)] = None,
                category: Annotated[Line | None, Query(max_length=40)] = None) -> StatsOut:
    """Incidents created in [from, to) (default: the last 7 days). `count` and every
    figure after it are over real incidents; rejected (spam or not), merged and cancelled
    ones are counted apart in `set_apart`. Response times are seconds from the report to
    acknowledge, on scene and close; `sla` is each step's share met against
    `sla_target`. `hour` and `weekday` group in Ho Chi Minh City time."""
    return await incident_stats(db, user, from_, to, group_by, ward, category,
                                settings.sla_target)
