"""Bodies of the staff actions (`POST /incidents/{id}/actions/{action}` and the console's
forms). Each body converts itself into the workflow update's input with `to_input`; what
only the database knows (the unit to route to, the merge target's code, the alert id) is
looked up by api.services.actions and handed over as `Resolved`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from schema import payloads as p
from schema import words
from schema.places import WARD_CODE_MAX
from schema.states import CITIZEN_ACTIONS, Action, Category, Outcome, Priority
from schema.text import Line, OptionalLine, Text

# Actions a staff member takes; cancel and add_info are the citizen's.
STAFF_ACTIONS: tuple[Action, ...] = tuple(a for a in Action if a not in CITIZEN_ACTIONS)

if TYPE_CHECKING:
    StaffAction = Action
else:  # the same members as Action minus the citizen's: the path parameter's enum
    StaffAction = StrEnum("StaffAction", {a.name: a.value for a in STAFF_ACTIONS})


@dataclass(frozen=True)
class Resolved:
    """Facts the API looked up for a body: the unit (route, reassign), the merge target's
    tracking code, the public alert's id."""

    unit: p.UnitRef | None = None
    target_tracking_code: str | None = None
    alert_id: str = ""


class ActionBody(BaseModel):
    """A staff action's body; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
    action: ClassVar[Action]

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        raise NotImplementedError


def _unit(found: Resolved) -> p.UnitRef:
    if found.unit is None:
        raise ValueError("the unit was not resolved")
    return found.unit


class _EmptyBody(ActionBody):
    """An action with nothing to say but who takes it."""

    input_type: ClassVar[type[p.ActionInput]]

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        return self.input_type(actor=actor)


class VerifyBody(_EmptyBody):
    action = Action.VERIFY
    input_type = p.VerifyInput


class AcknowledgeBody(_EmptyBody):
    action = Action.ACKNOWLEDGE
    input_type = p.AcknowledgeInput


class ArriveBody(_EmptyBody):
    action = Action.ARRIVE
    input_type = p.ArriveInput


class RejectBody(ActionBody):
    action = Action.REJECT
    reason: Text = Field(min_length=1, max_length=2000)

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        return p.RejectInput(actor=actor, reason=self.reason)


class MergeBody(ActionBody):
    action = Action.MERGE
    into_incident_id: uuid.UUID

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        return p.MergeInput(actor=actor, into_incident_id=str(self.into_incident_id),
                            into_tracking_code=found.target_tracking_code)


class ClassifyBody(ActionBody):
    action = Action.CLASSIFY
    category: Category
    priority: int = Field(ge=1, le=4)

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        return p.ClassifyInput(actor=actor, category=self.category,
                               priority=Priority(self.priority))


class RouteBody(ActionBody):
    """Exactly one of `unit_id` (id or code) and `ward_code` (that ward's police)."""

    action = Action.ROUTE
    unit_id: OptionalLine = Field(default=None, max_length=64)
    ward_code: int | None = Field(default=None, ge=0, le=WARD_CODE_MAX)

    @model_validator(mode="after")
    def _one(self) -> RouteBody:
        if (self.unit_id is None) == (self.ward_code is None):
            vi, en = words.both("field.route.one_unit")
            raise PydanticCustomError("one_unit", en, {"vi": vi})
        return self

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        return p.RouteInput(actor=actor, unit=_unit(found))


class ReassignBody(RouteBody):
    action = Action.REASSIGN
    reason: Text = Field(min_length=1, max_length=2000)

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        return p.ReassignInput(actor=actor, unit=_unit(found), reason=self.reason)


class NoteBody(ActionBody):
    action = Action.NOTE
    text: Text = Field(min_length=1, max_length=5000)
    attachments: list[uuid.UUID] = Field(default_factory=list, max_length=10)
    public: bool = False

    @property
    def attachment_ids(self) -> list[str]:
        """The attachment ids, each once, in the order given."""
        return [str(a) for a in dict.fromkeys(self.attachments)]

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        return p.NoteInput(actor=actor, text=self.text, attachments=self.attachment_ids,
                           public=self.public)


class MessageBody(ActionBody):
    """A question or instruction to the reporter ("Anh/chị có thấy biển số xe không?"):
    shown on the tracking page under the unit's or the command centre's name, never a
    staff member's; the reporter answers from there (`reply_to` its seq)."""

    action = Action.MESSAGE
    text: Text = Field(min_length=1, max_length=p.MAX_MESSAGE)

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        return p.MessageInput(actor=actor, text=self.text)


class CloseBody(ActionBody):
    action = Action.CLOSE
    outcome: Outcome
    summary: Text = Field(min_length=1, max_length=5000)

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        return p.CloseInput(actor=actor, outcome=self.outcome, summary=self.summary)


class PublishAlertBody(ActionBody):
    action = Action.PUBLISH_ALERT
    headline: Line = Field(min_length=1, max_length=160)
    instruction: Text = Field(min_length=1, max_length=2000)
    radius_m: int = Field(ge=50, le=50_000)

    def to_input(self, actor: p.Actor, found: Resolved) -> p.ActionInput:
        return p.PublishAlertInput(actor=actor, alert_id=found.alert_id,
                                   headline=self.headline, instruction=self.instruction,
                                   radius_m=self.radius_m)


BODIES: dict[Action, type[ActionBody]] = {
    body.action: body for body in (
        VerifyBody, RejectBody, MergeBody, ClassifyBody, RouteBody, AcknowledgeBody,
        ArriveBody, NoteBody, MessageBody, CloseBody, ReassignBody, PublishAlertBody)}
