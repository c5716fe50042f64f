"""Possible duplicates of a new report: open incidents of the same category nearby and
recent. A bounding box narrows the rows in SQL (index on category, created_at); the exact
great-circle distance is checked in Python."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlmodel import col, select
from temporalio import activity

from activities import names
from core.db import Database
from core.geo import EARTH_RADIUS_M, haversine_m
from core.settings import Settings
from schema.activity_args import DuplicatesInput
from schema.payloads import DuplicateSuggestion
from schema.states import Category, State
from schema.tables import Incident

MAX_SUGGESTIONS = 10


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing the circle."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


class DuplicateActivities:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    @activity.defn(name=names.FIND_DUPLICATES)
    async def find_duplicates(self, inp: DuplicatesInput) -> list[DuplicateSuggestion]:
        radius = self.settings.duplicate_radius_m
        since = inp.at - timedelta(minutes=self.settings.duplicate_window_min)
        min_lat, max_lat, min_lon, max_lon = bounding_box(inp.lat, inp.lon, radius)
        query = (
            select(Incident)
            .where(Incident.category == inp.category.value,
                   col(Incident.is_open).is_(True),
                   Incident.id != inp.incident_id,
                   Incident.created_at >= since, Incident.created_at <= inp.at,
                   Incident.lat >= min_lat, Incident.lat <= max_lat,
                   Incident.lon >= min_lon, Incident.lon <= max_lon)
            .order_by(col(Incident.created_at).desc())
            .limit(200)
        )
        async with self.db.session() as session:
            rows = (await session.exec(query)).all()
        found = []
        for row in rows:
            distance = haversine_m(inp.lat, inp.lon, row.lat, row.lon)
            if distance <= radius:
                found.append(DuplicateSuggestion(
                    incident_id=row.id, tracking_code=row.tracking_code, state=State(row.state),
                    category=Category(row.category), distance_m=round(distance, 1),
                    created_at=row.created_at,
                ))
        # Nearest first; among reports about as near (50 m bands: GPS error on a phone is
        # of that order), the newest first, as the same event is reported in a burst.
        found.sort(key=lambda d: (int(d.distance_m // 50), -d.created_at.timestamp()))
        return found[:MAX_SUGGESTIONS]
