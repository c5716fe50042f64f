"""Duplicate suggestions from the read model on PostgreSQL and SQLite."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from activities.duplicates import DuplicateActivities, bounding_box, haversine_m
from activities.projection import ProjectionActivities
from core.db import Database
from schema.activity_args import DuplicatesInput
from schema.payloads import Location
from schema.states import Category, State
from tests.workflows.factories import incident_input, new_id, receipt


def test_haversine_and_box() -> None:
    # One minute of latitude is one nautical mile.
    assert haversine_m(10.0, 106.0, 10.0 + 1 / 60, 106.0) == pytest.approx(1853, rel=0.01)
    min_lat, max_lat, min_lon, max_lon = bounding_box(10.77, 106.7, 300)
    assert haversine_m(10.77, 106.7, max_lat, 106.7) == pytest.approx(300, rel=0.001)
    assert haversine_m(10.77, 106.7, 10.77, max_lon) == pytest.approx(300, rel=0.001)


async def test_finds_open_same_category_nearby_recent(any_db: Database, make_settings) -> None:
    projection = ProjectionActivities(any_db)
    # A spot of our own so other tests' incidents cannot match.
    lat, lon = 10.70 + random.random() * 0.1, 106.60 + random.random() * 0.1
    now = datetime.now(UTC)

    async def stored(dlat_m: float, category: Category = Category.TRAFFIC_ACCIDENT,
                     age_min: float = 5, state: State = State.RECEIVED) -> str:
        inp = incident_input(category=category, received_at=now - timedelta(minutes=age_min),
                             location=Location(lat=lat + dlat_m / 111_000, lon=lon))
        await projection.project(receipt(inp, state=state))
        return inp.incident_id

    near = await stored(100)
    nearer = await stored(-40)
    await stored(600)  # too far
    await stored(50, category=Category.CRIME)  # other category
    await stored(50, age_min=45)  # too old
    await stored(50, state=State.CLOSED)  # not open
    found = await DuplicateActivities(make_settings(), any_db).find_duplicates(DuplicatesInput(
        incident_id=new_id(), category=Category.TRAFFIC_ACCIDENT, lat=lat, lon=lon, at=now))
    assert [d.incident_id for d in found] == [nearer, near]
    assert found[0].distance_m == pytest.approx(40, abs=2)
    assert found[1].state is State.RECEIVED
    # A narrower radius setting drops the farther one; the incident never matches itself.
    narrow = DuplicateActivities(make_settings(CANHBAO_DUPLICATE_RADIUS_M=60), any_db)
    found = await narrow.find_duplicates(DuplicatesInput(
        incident_id=nearer, category=Category.TRAFFIC_ACCIDENT, lat=lat, lon=lon, at=now))
    assert found == []
