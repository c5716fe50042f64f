"""Pure geometry shared by the worker, the API, the pages and the seed: great-circle
distance, the city's wards from the `vietnam-provinces` package and a GeoJSON file, and
the ward index (GPS point → ward).

Ward polygons come from a GeoJSON FeatureCollection (`properties.code`, settings
`wards_geojson`); names and codes from `vietnam-provinces`. Geometry is kept in a local
metric projection (equirectangular around HCMC), so distances are metres; the error is
well under 1 % between Củ Chi and Côn Đảo.
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
from vietnam_provinces import ProvinceCode
from vietnam_provinces import Ward as VnWard

from schema.payloads import WardInfo

log = structlog.get_logger(__name__)

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points (degrees)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


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


def hcmc_wards() -> list[VnWard]:
    """The city's wards (codes, names, codenames) from the `vietnam-provinces` package."""
    return list(VnWard.iter_by_province(ProvinceCode(HCMC_PROVINCE_CODE)))


def official_names() -> dict[int, str]:
    """Ward code → official name, spaces normalised."""
    return {int(w.code): " ".join(w.name.split()) for w in hcmc_wards()}


def load_features(path: str | Path) -> list[tuple[int, str, dict]]:
    """(code, name in the file, GeoJSON geometry) of each ward of a FeatureCollection with
    `properties.code`; features without a code or a geometry are skipped."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    out = []
    for feature in data.get("features", []):
        props = feature.get("properties") or {}
        if props.get("code") is None or not feature.get("geometry"):
            continue
        code = int(props["code"])
        out.append((code, " ".join(str(props.get("name", code)).split()), feature["geometry"]))
    return out


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
        official = official_names()
        features = [(code, official.get(code) or name, geometry)
                    for code, name, geometry in load_features(path)]
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
