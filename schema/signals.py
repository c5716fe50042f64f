"""The signals between incidents' workflows: the merge handshake (workflows/merge.py) and
what a merged report's citizen adds. Pydantic payloads like schema.payloads'.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from schema.payloads import Actor, Payload
from schema.states import State


class MergedChild(Payload):
    """Sent to the primary when another report is merged into it."""

    incident_id: str
    tracking_code: str
    by: Actor
    at: datetime | None = None  # the merge's time (the merged_in event's, via _moment)


class PrimaryChanged(Payload):
    """Sent by a primary to each incident merged into it when its state changes."""

    primary_id: str
    state: State
    at: datetime


class MergeRequest(Payload):
    """Sent by an incident that is being merged to its target, which answers with
    `MergeReply`: the target's acceptance is part of the merge decision."""

    request_id: str
    child_id: str
    child_tracking_code: str
    by: Actor


class MergeReply(Payload):
    """A target's answer to a merge request. Fields it does not know are ignored: runs
    before session 6 also sent the refusal's words (`reason_vi`, `reason_en`), which the
    asker now words itself from `reason`."""

    model_config = ConfigDict(frozen=False, extra="ignore")

    request_id: str
    target_id: str
    accepted: bool
    target_tracking_code: str
    target_state: State
    reason: str | None = None  # a refusal's code (schema/rules.py absorb_refusal)


class MergeCancel(Payload):
    """The merging incident gave up (timeout, or its own state moved): drop the hold."""

    request_id: str
    child_id: str


class ChildInfo(Payload):
    """A citizen added information to a report merged into this incident."""

    child_id: str
    child_tracking_code: str
    text: str | None = None
    attachments: list[str] = Field(default_factory=list)
    at: datetime | None = None  # the child's add_info time (this event's, via _moment)
