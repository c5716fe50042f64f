"""Reference data: units, wards and the ward for a GPS point.

/wards and /wards/locate are public (no personal data; the citizen page uses them); /units
is for staff.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select
from sqlmodel import col

from api.deps import CurrentUser, SessionDep, SettingsDep
from api.errors import ApiError, not_found
from core.geo import get_ward_index
from schema import words
from schema.places import WARD_CODE_MAX, LocateOut, UnitPublic, WardPublic
from schema.tables import Unit, Ward
from schema.text import Line

router = APIRouter(prefix="/api/v1", tags=["reference"])
_ERR = {"model": dict}


@router.get("/units", response_model=list[UnitPublic], responses={401: _ERR})
async def list_units(s: SessionDep, user: CurrentUser,
                     kind: Annotated[Line | None, Query(max_length=40)] = None,
                     ward: Annotated[int | None, Query(ge=0, le=WARD_CODE_MAX)] = None
                     ) -> list[UnitPublic]:
    stmt = select(Unit).order_by(col(Unit.kind), col(Unit.name))
    if kind:
        stmt = stmt.where(col(Unit.kind) == kind)
    if ward is not None:
        stmt = stmt.where(col(Unit.ward_code) == ward)
    rows = (await s.execute(stmt)).scalars().all()
    return [UnitPublic.model_validate(u, from_attributes=True) for u in rows]


def _ward(w: Ward, geometry: bool) -> WardPublic:
    return WardPublic(code=w.code, name=w.name, short_codename=w.short_codename,
                      division_type=w.division_type, lat=w.lat, lon=w.lon,
                      geometry=json.loads(w.geometry) if geometry and w.geometry else None)


@router.get("/wards", response_model=list[WardPublic])
async def list_wards(s: SessionDep, geometry: bool = False) -> list[WardPublic]:
    """The 168 HCMC wards; `geometry=true` adds each boundary (GeoJSON, about 2 MB)."""
    rows = (await s.execute(select(Ward).order_by(col(Ward.code)))).scalars().all()
    return [_ward(w, geometry) for w in rows]


@router.get("/wards/locate", response_model=LocateOut, responses={404: _ERR, 503: _ERR})
async def locate_ward(settings: SettingsDep,
                      lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
                      lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)]
                      ) -> LocateOut:
    """The ward containing the point (exact), else the nearest one (exact=false);
    outside_city when it is farther than the setting from any ward."""
    try:
        index = await asyncio.to_thread(get_ward_index, settings.wards_geojson)
    except (ImportError, OSError, ValueError) as exc:
        raise ApiError(503, "unavailable", *words.both("error.unavailable.wards")) from exc
    info = index.locate(lat, lon, settings.outside_city_m)
    if info is None:
        raise not_found(*words.both("error.not_found.ward_here"))
    return LocateOut(code=info.code, name=info.name, exact=info.exact,
                     outside_city=info.outside_city, distance_m=info.distance_m)


@router.get("/wards/{code}", response_model=WardPublic, responses={404: _ERR})
async def get_ward(s: SessionDep, code: Annotated[int, Path(ge=0, le=WARD_CODE_MAX)],
                   geometry: bool = True) -> WardPublic:
    w = await s.get(Ward, code)
    if w is None:
        raise not_found(*words.both("error.not_found.ward"))
    return _ward(w, geometry)
