"""Ward location with the real HCMC ward polygons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import Point, shape

from activities.geo import GeoActivities, WardIndex, get_ward_index
from core.db import Database
from core.settings import Settings
from schema.activity_args import LocateInput

BEN_THANH_MARKET = (10.7725, 106.6980)
GAP = (10.774064, 106.689827)  # a sliver between simplified ward polygons near Cộng Hòa
EAST_SEA = (10.0, 107.5)
CON_DAO = (8.6833, 106.6000)


@pytest.fixture(scope="module")
def index(wards_geojson: Path) -> WardIndex:
    return get_ward_index(wards_geojson)


def test_index_has_every_ward_and_is_cached(index: WardIndex, wards_geojson: Path) -> None:
    assert len(index) == 168
    assert get_ward_index(str(wards_geojson)) is index


@pytest.mark.parametrize(("point", "name"), [
    (BEN_THANH_MARKET, "Phường Bến Thành"),
    ((10.8505, 106.7725), "Phường Thủ Đức"),
    (CON_DAO, "Đặc khu Côn Đảo"),
    ((10.4, 106.95), "Xã Cần Giờ"),
])
def test_points_inside_a_ward(index: WardIndex, point: tuple[float, float], name: str) -> None:
    ward = index.locate(*point)
    assert ward is not None
    assert (ward.name, ward.exact, ward.outside_city, ward.distance_m) == (name, True, False, 0)


def test_point_in_a_gap_goes_to_the_nearest_ward(index: WardIndex,
                                                 wards_geojson: Path) -> None:
    features = json.loads(wards_geojson.read_text(encoding="utf-8"))["features"]
    point = Point(GAP[1], GAP[0])
    assert not any(shape(f["geometry"]).intersects(point) for f in features)
    nearest = min(features, key=lambda f: shape(f["geometry"]).distance(point))
    ward = index.locate(*GAP)
    assert ward is not None and not ward.exact and not ward.outside_city
    assert ward.code == nearest["properties"]["code"]
    assert ward.distance_m < 30


def test_point_far_out_at_sea_is_flagged(index: WardIndex) -> None:
    ward = index.locate(*EAST_SEA)
    assert ward is not None and ward.outside_city and not ward.exact
    assert ward.distance_m > 40_000
    # The threshold is a setting.
    assert not index.locate(*EAST_SEA, outside_city_m=100_000).outside_city


async def test_locate_activity_proposes_the_ward_police(any_db: Database,
                                                         make_settings) -> None:
    settings: Settings = make_settings()
    geo = GeoActivities(settings, any_db)
    found = await geo.locate_ward(LocateInput(lat=BEN_THANH_MARKET[0], lon=BEN_THANH_MARKET[1]))
    assert found.ward is not None and found.ward.name == "Phường Bến Thành"
    assert found.unit is not None
    assert (found.unit.kind, found.unit.ward_code) == ("ward_police", found.ward.code)
    assert found.unit.name == "Công an Phường Bến Thành"
    at_sea = await geo.locate_ward(LocateInput(lat=EAST_SEA[0], lon=EAST_SEA[1]))
    assert at_sea.ward is not None and at_sea.ward.outside_city
    assert at_sea.unit is not None  # still proposed, the operator sees the flag
