"""Ward lookup for a GPS point, and the activity that proposes the ward police unit.

Ward polygons come from a GeoJSON FeatureCollection (`properties.code`, settings
`wards_geojson`); names and codes from the `vietnam-provinces` package. Geometry is kept in
a local metric projection (equirectangular around HCMC), so distances are metres; the
error is well under 1 % between Củ Chi and Côn Đảo.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
import structlog
from shapely.geometry import Point, shape
from sqlmodel import select
from temporalio import activity

from activities import names
from core.db import Database
from core.settings import Settings
from schema.payloads import LocateInput, LocateResult, UnitRef, WardInfo
from schema.tables import Unit

log = structlog.get_logger(__name__)

_LAT0 = math.radians(10.8)  # projection centre: the city
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0 * math.cos(_LAT0)
HCMC_PROVINCE_CODE = 79


def _project(coords: np.ndarray) -> np.ndarray:
    """lon/lat degrees → metres (x east, y north)."""
    out = np.empty_like(coords)
    out[:, 0] = coords[:, 0] * _M_PER_DEG_LON
    out[:, 1] = coords[:, 1] * _M_PER_DEG_LAT
    return out


def _package_names() -> dict[int, str]:
    try:
        from vietnam_provinces import ProvinceCode
        from vietnam_provinces import Ward as VnWard
    except ImportError:  # pragma: no cover - the package is a dependency
        return {}
    return {int(w.code): " ".join(w.name.split())
            for w in VnWard.iter_by_province(ProvinceCode(HCMC_PROVINCE_CODE))}


class WardIndex:
    """Point → ward: exact polygon hit (smallest area wins where slivers overlap), else the
    nearest ward with `exact=False`, flagged `outside_city` beyond `outside_city_m`."""

    def __init__(self, features: list[tuple[int, str, dict]]) -> None:
        self.codes: list[int] = []
        self.names: list[str] = []
        geoms = []
        for code, name, geometry in features:
            self.codes.append(code)
            self.names.append(name)
            geoms.append(shapely.transform(shape(geometry), _project))
        self.geoms = geoms
        self.areas = [g.area for g in geoms]
        self.tree = shapely.STRtree(geoms)
        for g in geoms:
            shapely.prepare(g)

    @classmethod
    def from_geojson(cls, path: str | Path) -> WardIndex:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        official = _package_names()
        features = []
        for feature in data.get("features", []):
            props = feature.get("properties") or {}
            if props.get("code") is None or not feature.get("geometry"):
                continue
            code = int(props["code"])
            name = official.get(code) or " ".join(str(props.get("name", code)).split())
            features.append((code, name, feature["geometry"]))
        if not features:
            raise ValueError(f"no ward features in {path}")
        return cls(features)

    def __len__(self) -> int:
        return len(self.codes)

    def locate(self, lat: float, lon: float, outside_city_m: float = 2000.0) -> WardInfo | None:
        if not self.codes:
            return None
        point = Point(lon * _M_PER_DEG_LON, lat * _M_PER_DEG_LAT)
        hits = self.tree.query(point, predicate="intersects")
        if len(hits):
            best = min((int(i) for i in hits), key=lambda i: self.areas[i])
            return WardInfo(code=self.codes[best], name=self.names[best])
        idx, dist = self.tree.query_nearest(point, return_distance=True)
        best = min(int(i) for i in idx)
        distance = float(dist[0])
        return WardInfo(code=self.codes[best], name=self.names[best], exact=False,
                        outside_city=distance > outside_city_m,
                        distance_m=round(distance, 1))


@lru_cache(maxsize=4)
def _cached_index(path: str, mtime: float) -> WardIndex:
    index = WardIndex.from_geojson(path)
    log.info("ward index loaded", path=path, wards=len(index))
    return index


def get_ward_index(path: str | Path) -> WardIndex:
    """The index for `path`, built once per file version."""
    resolved = str(Path(path).resolve())
    return _cached_index(resolved, Path(resolved).stat().st_mtime)


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
        return LocateResult(ward=ward, unit=unit)
