"""Shapes of the reference data (units, wards, the ward of a point) as the API shows it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from schema.tables import UnitBase

# The largest ward code any input may name (codes are the official 5-digit ones): a
# bound that keeps every ward filter within what the database's integer holds.
WARD_CODE_MAX = 10_000_000


class UnitPublic(UnitBase):
    """A unit as the API shows it: the stored fields and the id."""

    id: str


class WardPublic(BaseModel):
    code: int
    name: str
    short_codename: str
    division_type: str
    lat: float | None
    lon: float | None
    geometry: dict[str, Any] | None = None


class LocateOut(BaseModel):
    code: int
    name: str
    exact: bool
    outside_city: bool
    distance_m: float
