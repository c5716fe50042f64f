"""Shapes of the reference data (units, wards, the ward of a point) as the API shows it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from schema.tables import UnitBase


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
