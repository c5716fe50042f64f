"""Shapes of incidents as staff see them, shared by the JSON API and the pages: the list
filters, a list row (`IncidentSummary`), a page of rows, the detail (`IncidentDetail`) and
escalation alerts. Built from the read model (schema.tables) by api.services.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import col

from schema import payloads as p
from schema import phones
from schema.locations import ReporterLocationOut
from schema.places import WARD_CODE_MAX
from schema.states import Action, Category, Outcome, State
from schema.tables import Incident
from schema.text import OptionalLine


def is_overdue(is_open: bool, escalation_level: int, deadline: datetime | None,
               now: datetime) -> bool:
    """The one meaning of "overdue": open, and escalated or past its deadline."""
    return bool(is_open and (escalation_level > 0 or (deadline is not None and deadline < now)))


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """`is_overdue` as SQL over the incidents table."""
    return and_(col(Incident.is_open),
                or_(col(Incident.escalation_level) > 0, col(Incident.deadline) < now))


class ListOrder(StrEnum):
    """The order of a staff list: `urgency` is overdue first, then priority (1 first), then
    the oldest; `newest` (the API's default) and `oldest` by the time reported."""

    URGENCY = "urgency"
    NEWEST = "newest"
    OLDEST = "oldest"


class IncidentFilters(BaseModel):
    """What a staff list is narrowed to (on top of the caller's scope)."""

    state: list[State] = Field(default_factory=list)
    ward: int | None = Field(default=None, ge=0, le=WARD_CODE_MAX)
    unit: str | None = None
    category: Category | None = None
    priority: int | None = Field(default=None, ge=1, le=4)
    overdue: bool | None = None
    q: OptionalLine = Field(default=None, max_length=200)
    # Leave out the reports still `received` of open flood groups (the console shows each
    # such group as one row instead: schema/abuse.py).
    outside_groups: bool = False


class WardRef(BaseModel):
    code: int
    name: str | None = None


class UnitOut(BaseModel):
    id: str
    name: str | None = None


class IncidentBase(BaseModel):
    """Fields every staff view of an incident has."""

    id: str
    tracking_code: str
    state: State
    category: Category
    priority: int
    description: str
    location: p.Location
    address: str | None
    source: str
    created_at: datetime
    updated_at: datetime
    deadline: datetime | None = Field(description=(
        "When the next escalation comes: the SLA deadline while not overdue, then the next "
        "level (schema.escalation), then the next reminder past the top level"))
    escalation_level: int
    merged_into: str | None
    silent: bool = Field(default=False, description=(
        "A silent SOS: the reporter may not be able to speak or be seen reporting (do not "
        "call back aloud). As the report was accepted (api/services/incidents.silent_ids)"))


class IncidentSummary(IncidentBase):
    """One row of a list (description cut to 500 characters)."""

    ward: WardRef | None
    unit: UnitOut | None
    overdue: bool
    overdue_since: datetime | None = None
    version: int = 0  # the case version as the read model has it (If-Match)
    outside_city: bool
    duplicate_count: int


class IncidentPage(BaseModel):
    items: list[IncidentSummary]
    next_cursor: str | None


class AttachmentRef(BaseModel):
    attachment_id: str
    content_type: str
    size: int
    sha256: str
    url: str = Field(description="The original as uploaded (evidence; sha256 is of it)")
    preview_url: str | None = Field(
        default=None, description="JPEG, longest side 1600 px, oriented, no metadata "
                                  "(images only)")
    thumbnail_url: str | None = Field(default=None, description="JPEG, 320 px (images only)")


class ReporterOut(BaseModel):
    """The reporter as staff see them: `phone` as stored (E.164 when it is a valid number,
    else the text as typed), `phone_display` in the national form, `phone_valid` false for
    a text that is not a valid number (shown to the operator as not verified)."""

    name: str | None = None
    phone: str | None = None
    phone_display: str | None = None
    phone_valid: bool | None = None

    @classmethod
    def of(cls, reporter: p.Reporter | None) -> ReporterOut | None:
        if reporter is None:
            return None
        shown = phones.view(reporter.phone)
        return cls(name=reporter.name, phone=reporter.phone,
                   phone_display=shown.display if shown else None,
                   phone_valid=shown.valid if shown else None)


class IncidentDetail(IncidentBase):
    """One incident with its timeline and what the caller may do now."""

    ward: p.WardInfo | None
    unit: p.UnitRef | None
    proposed_unit: p.UnitRef | None
    reporter: ReporterOut | None
    attachments: list[AttachmentRef]
    timeline: list[p.TimelineEvent]
    overdue_since: datetime | None
    outcome: Outcome | None
    duplicates: list[p.DuplicateSuggestion]
    merged_incidents: list[str]
    primary_state: State | None
    acknowledged_at: datetime | None
    on_scene_at: datetime | None
    closed_at: datetime | None
    allowed_actions: list[Action]
    version: int = Field(default=0, description=(
        "The case version (also the ETag): send it back as If-Match with an action so that "
        "a change made meanwhile by someone else is refused (412) instead of overwritten"))
    escalation_reminders: int = Field(default=0, description=(
        "Reminders sent since the top escalation level was reached"))
    live: bool = Field(description="True when read from the workflow, False from SQL")
    reporter_location: ReporterLocationOut | None = Field(default=None, description=(
        "The reporter's live location, when they share it from the tracking page"))


class AlertOut(BaseModel):
    """An escalation (the incident stayed too long in `state`), or with kind "stalled" an
    open incident whose deadline passed and whose workflow has not acted on it
    (api/services/alerts.stalled): id `stalled:<incident_id>`, level the incident's
    current level, overdue_since its deadline."""

    id: str
    incident_id: str
    tracking_code: str
    level: int
    state: str
    priority: int
    category: str
    ward_code: int | None
    unit_id: str | None
    overdue_since: datetime
    created_at: datetime
    resolved_at: datetime | None
    open: bool
    kind: Literal["escalation", "stalled"] = "escalation"
