"""Shapes of the statistics (GET /stats and the supervisor's charts)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class GroupBy(StrEnum):
    WARD = "ward"
    CATEGORY = "category"
    HOUR = "hour"
    UNIT = "unit"


class Percentiles(BaseModel):
    n: int
    p50_s: float | None
    p90_s: float | None


class Bucket(BaseModel):
    key: str | None
    label: str | None
    count: int
    open: int
    by_state: dict[str, int]
    to_acknowledge: Percentiles
    to_on_scene: Percentiles
    to_close: Percentiles
    sla_met: int
    sla_compliance: float | None  # share never overdue (no escalation alert)


class StatsOut(BaseModel):
    from_: datetime = Field(serialization_alias="from")  # the query's own name
    to: datetime
    group_by: GroupBy | None
    total: Bucket
    groups: list[Bucket]
    truncated: bool
