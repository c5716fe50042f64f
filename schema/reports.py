"""Shapes of the citizen's side, shared by the JSON API (api/routes/reports.py), the
report and tracking pages and Open311: a report (`ReportCreate` → `IncidentInput`), its
acceptance, the tracking view, attachments, add-info and cancel bodies."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schema import payloads as p
from schema import phones
from schema.abuse import MAX_DEVICE_ID
from schema.states import Category, Outcome, State
from schema.text import OptionalLine, OptionalText, Text

MAX_ATTACHMENTS = 10
MAX_TEXT = 5000  # characters of a description or of one citizen addition


def normalise_tracking_code(text: str) -> str:
    """What a person types or reads out (`ac-ef 3479`) as a stored code (`ACEF3479`)."""
    return re.sub(r"[\s\-.]", "", text).upper()


def unique_ids(ids: list[uuid.UUID] | list[str]) -> list[str]:
    """The ids as strings, each once, in the order given."""
    return list(dict.fromkeys(str(a) for a in ids))


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, examples=[10.7769])
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, examples=[106.7009])
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)


class ReporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: OptionalLine = Field(default=None, max_length=200)
    phone: OptionalLine = Field(
        default=None, max_length=64,
        description="Any common form of a Vietnamese number (0912 345 678, +84 912345678, "
                    "0084…); stored as E.164. A number that cannot be read is kept as typed "
                    "for the operator and never refuses the report.")

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return phones.normalise(v) if v else None


class ReportCreate(BaseModel):
    """The POST /reports body. Every text is cleaned by schema.text (NFC, no control
    characters, trimmed) before its limit is checked."""

    model_config = ConfigDict(extra="forbid")
    report_id: uuid.UUID | None = Field(
        default=None, description="Chosen by the client so a resubmission is idempotent")
    category: Category
    description: Text = Field(min_length=1, max_length=MAX_TEXT)
    location: LocationIn
    address: OptionalLine = Field(default=None, max_length=500)
    reporter: ReporterIn | None = None
    attachments: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    device_id: OptionalLine = Field(
        default=None, max_length=MAX_DEVICE_ID,
        description="A stable random id the client keeps (the citizen page: localStorage), "
                    "optional; reports that come too often from one device are marked for "
                    "the operator as suspected spam, never refused (schema/abuse.py)")
    silent: bool = Field(
        default=False, description="A silent SOS: the reporter may not be able to speak or be "
        "seen reporting; staff must not call back without care")

    def to_input(self, incident_id: str, tracking_code: str, received_at: datetime,
                 source: str, sla_scale: float,
                 sla: dict[int, dict[str, float]] | None,
                 reminders: list[float] | None = None) -> p.IncidentInput:
        """The workflow's input for this report."""
        reporter = None
        if self.reporter and (self.reporter.name or self.reporter.phone):
            reporter = p.Reporter(name=self.reporter.name, phone=self.reporter.phone)
        return p.IncidentInput(
            incident_id=incident_id, tracking_code=tracking_code, category=self.category,
            description=self.description,
            location=p.Location(**self.location.model_dump()), received_at=received_at,
            address=self.address, reporter=reporter,
            attachments=unique_ids(self.attachments), source=source, silent=self.silent,
            sla_scale=sla_scale, sla=sla, reminders=reminders)


class ReportAccepted(BaseModel):
    incident_id: str
    tracking_code: str
    tracking_token: str
    status_url: str


class TrackingEvent(BaseModel):
    """One line of the public timeline. A staff message (`kind` "message") and the
    reporter's answer ("reply") add `seq`, `text`, and `sender`/`sender_en` (a unit or the
    command centre, never a person) or `reply_to` (the message's seq)."""

    at: datetime
    state: State
    public_note: str | None = None
    kind: str | None = None
    seq: int | None = None
    text: str | None = None
    sender: str | None = None
    sender_en: str | None = None
    reply_to: int | None = None
    from_primary: bool = Field(default=False, description=(
        "True for a step of the incident this report was merged into (its state then); "
        "such steps are shown from before the merge as well"))


class TrackingReply(BaseModel):
    seq: int
    at: datetime
    text: str | None = None


class TrackingMessage(BaseModel):
    """A question or instruction from staff to the reporter, with the answers so far.
    Answer it with `POST /track/{token}/info` `{text, reply_to: seq}`."""

    seq: int
    at: datetime
    text: str
    sender: str = Field(description="The unit or the command centre, in Vietnamese")
    sender_en: str
    answered: bool = False
    replies: list[TrackingReply] = Field(default_factory=list)


class TrackingOutcome(BaseModel):
    """How the officer closed the case, with its words in both languages."""

    code: Outcome
    label_vi: str
    label_en: str


class TrackingView(BaseModel):
    tracking_code: str
    state: State
    category: Category
    created_at: datetime
    updated_at: datetime
    timeline: list[TrackingEvent]
    messages: list[TrackingMessage] = Field(
        default_factory=list, description="Staff messages to the reporter, oldest first")
    outcome: TrackingOutcome | None = Field(default=None, description=(
        "The closing outcome once closed (of the incident this report was merged into, "
        "for a merged report); null before"))
    summary: str | None = Field(default=None, description=(
        "The officer's public summary at the closing; null before or when none was given"))


class AttachmentOut(BaseModel):
    attachment_id: str
    content_type: str
    size: int
    sha256: str


class InfoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: OptionalText = Field(default=None, max_length=MAX_TEXT)
    attachments: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    reply_to: int | None = Field(
        default=None, ge=1, le=2**31 - 1,
        description="The `seq` of the staff message this answers (from `messages`)")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: OptionalText = Field(default=None, max_length=2000)
