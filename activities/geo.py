"""The activity that finds the ward of a GPS point (core/geo.py's ward index) and
proposes the ward police unit."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select
from temporalio import activity

from activities import names
from core.db import Database
from core.geo import WardIndex, get_ward_index
from core.settings import Settings
from schema.activity_args import LocateInput, LocateResult
from schema.payloads import UnitRef
from schema.tables import Unit


class GeoActivities:
    def __init__(self, settings: Settings, db: Database, wards: WardIndex | None = None) -> None:
        self.settings = settings
        self.db = db
        self._wards = wards

    @property
    def wards(self) -> WardIndex:
        if self._wards is None:
            self._wards = get_ward_index(self.settings.wards_geojson)
        return self._wards

    async def ward_police(self, ward_code: int) -> UnitRef | None:
        async with self.db.session() as session:
            unit = (await session.exec(
                select(Unit).where(Unit.ward_code == ward_code, Unit.kind == "ward_police",
                                   Unit.active == True)  # noqa: E712 - SQL expression
                .order_by(Unit.code).limit(1)
            )).first()
        if unit is None:
            return None
        return UnitRef(id=unit.id, name=unit.name, kind=unit.kind, ward_code=unit.ward_code)

    @activity.defn(name=names.LOCATE_WARD)
    async def locate_ward(self, inp: LocateInput) -> LocateResult:
        ward = self.wards.locate(inp.lat, inp.lon, self.settings.outside_city_m)
        unit = await self.ward_police(ward.code) if ward else None
        return LocateResult(ward=ward, unit=unit, at=datetime.now(UTC))
