"""Shapes of the statistics (GET /stats and the supervisor's statistics section)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class GroupBy(StrEnum):
    WARD = "ward"
    CATEGORY = "category"
    HOUR = "hour"  # hour of day, Ho Chi Minh City time: "0" … "23"
    WEEKDAY = "weekday"  # ISO day of week, Ho Chi Minh City time: "1" Monday … "7" Sunday
    UNIT = "unit"


class Percentiles(BaseModel):
    n: int
    p50_s: float | None
    p90_s: float | None


class SetApart(BaseModel):
    """Incidents that ended without being real ones, each counted on its own: never in a
    bucket's `count`, response times or SLA figures. `spam` is a rejection of a report
    marked as suspected spam (schema/abuse.py) and not cleared, or of a flood group
    rejected as a whole; `rejected` is every other rejection."""

    spam: int = 0
    rejected: int = 0
    merged: int = 0
    cancelled: int = 0


class StepSla(BaseModel):
    """One step's SLA compliance over real incidents: `n` reached the step or went
    overdue before it, `met` reached it without going overdue in any state before it.
    `target` is the share the centre aims for (CANHBAO_SLA_TARGET)."""

    n: int
    met: int
    compliance: float | None
    target: float
    meets_target: bool | None  # None when n is 0


class StepsSla(BaseModel):
    acknowledge: StepSla  # report → acknowledged (received, verified, classified, routed)
    on_scene: StepSla  # report → on scene (… and acknowledged)
    close: StepSla  # report → closed (… and on scene)


class Bucket(BaseModel):
    key: str | None
    label: str | None
    count: int  # real incidents: every one not rejected, merged or cancelled
    received: int  # every incident: count + the ones set apart
    set_apart: SetApart
    open: int
    by_state: dict[str, int]  # every incident, real or not
    to_acknowledge: Percentiles
    to_on_scene: Percentiles
    to_close: Percentiles
    sla_met: int  # real incidents never overdue
    sla_compliance: float | None  # sla_met / count
    sla: StepsSla


class StatsOut(BaseModel):
    from_: datetime = Field(serialization_alias="from")  # the query's own name
    to: datetime
    group_by: GroupBy | None
    total: Bucket
    groups: list[Bucket]
    sla_target: float
    truncated: bool = False  # kept for older clients: every row is counted, in SQL
