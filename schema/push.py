"""Web Push to the reporter: which events are worth a notification and what it says, and
the request bodies of the push subscription API (`/api/v1/push/...`).

`PUSH_WORTHY` is the one list of event kinds (the timeline's `action`) that send a push:
a new kind the citizen should hear about is one more line there. The projection
(activities/projection.py) queues a push for each such event; activities/push.py sends it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from schema import words
from schema.states import Action

MAX_ENDPOINT = 2048
# The latest `expirationTime` taken (ms since the epoch): 2200-01-01 UTC, as schema/times.py.
MAX_EXPIRATION_MS = 7_258_118_400_000
NOTE_CHARS = 140  # how much of a public note a notification shows


@dataclass(frozen=True)
class PushText:
    """What a notification says (Vietnamese, short, never a staff member's name). `body`
    may hold `{code}` (the tracking code) and `{note}` (the event's public note; an event
    without one sends `no_note`, or nothing when that is None). `urgent` sends with
    Urgency: high."""

    title: str
    body: str
    urgent: bool = False
    no_note: str | None = None  # the body when the event has no public note (None: no push)


# event kind (TimelineEvent.action) -> the notification. One line per kind.
def _push(action: Action, urgent: bool = False, no_note: str | None = None) -> PushText:
    """The notification of `action`: catalogue keys `push.<action>.title` and `.body`."""
    return PushText(words.t("vi", f"push.{action.value}.title"),
                    words.t("vi", f"push.{action.value}.body"), urgent, no_note)


PUSH_WORTHY: dict[str, PushText] = {
    Action.VERIFY.value: _push(Action.VERIFY),
    Action.ROUTE.value: _push(Action.ROUTE),
    Action.REASSIGN.value: _push(Action.REASSIGN),
    Action.ACKNOWLEDGE.value: _push(Action.ACKNOWLEDGE),
    Action.ARRIVE.value: _push(Action.ARRIVE),
    # A public note is the police writing to the reporter: sent with Urgency: high.
    Action.NOTE.value: _push(Action.NOTE, urgent=True),
    Action.CLOSE.value: _push(Action.CLOSE),
    Action.REJECT.value: _push(Action.REJECT),
    Action.MERGE.value: _push(Action.MERGE),
    # Staff -> reporter messages (the "message" action).
    Action.MESSAGE.value: _push(Action.MESSAGE, urgent=True,
                                no_note=words.t("vi", "push.message.no_note")),
}


def push_message(action: str, tracking_code: str,
                 public_note: str | None) -> tuple[str, str, bool] | None:
    """(title, body, urgent) of the notification for an event, or None when the event
    sends none (not in PUSH_WORTHY, or it needs a note and has none)."""
    text = PUSH_WORTHY.get(action)
    if text is None:
        return None
    note = " ".join((public_note or "").split())
    body = text.body
    if "{note}" in body and not note:
        if text.no_note is None:
            return None
        body = text.no_note
    if len(note) > NOTE_CHARS:
        note = note[:NOTE_CHARS - 1].rstrip() + "…"
    return text.title, body.format(code=tracking_code, note=note), text.urgent


def _bad(kind: str, key: str, **params: object) -> PydanticCustomError:
    vi, en = words.both(key, **params)
    return PydanticCustomError(kind, en, {"vi": vi})


def b64url(data: bytes) -> str:
    """base64url without padding (the Push API's encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """The bytes of a base64url text (padding optional); ValueError if it is not one."""
    text = text.strip()
    if not text or any(c not in _B64URL for c in text):
        raise ValueError("not base64url")
    bare = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def _key_bytes(value: str, size: int, what: str) -> str:
    try:
        raw = b64url_decode(value)
    except ValueError as exc:
        raise _bad("push_key", "field.push_key.base64", what=what) from exc
    if len(raw) != size:
        raise _bad("push_key", "field.push_key.size", what=what, size=size, got=len(raw))
    if size == 65:
        _on_curve(raw, what)
    return b64url(raw)


def _on_curve(raw: bytes, what: str) -> None:
    """A P-256 public key as an uncompressed point that lies on the curve."""
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as exc:
        raise _bad("push_key", "field.push_key.curve", what=what) from exc


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


class PushKeys(BaseModel):
    """`PushSubscription.toJSON().keys`: the browser's ECDH public key (65 bytes) and
    its authentication secret (16 bytes), both base64url."""

    model_config = ConfigDict(extra="ignore")
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, v: str) -> str:
        return _key_bytes(v, 65, "keys.p256dh")

    @field_validator("auth")
    @classmethod
    def _auth(cls, v: str) -> str:
        return _key_bytes(v, 16, "keys.auth")


class PushSubscriptionIn(BaseModel):
    """`POST /api/v1/push/subscriptions`: the tracking token and the browser's
    `PushSubscription.toJSON()` (endpoint, expirationTime, keys)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    tracking_token: str = Field(min_length=1, max_length=200)
    endpoint: str = Field(min_length=1, max_length=MAX_ENDPOINT)
    expiration_time: float | None = Field(
        default=None, alias="expirationTime", ge=0, le=MAX_EXPIRATION_MS, allow_inf_nan=False,
        description="When the browser's subscription ends, in ms since 1970-01-01 UTC (null: "
                    "no end). One already past is refused (422); none is sent after it")
    keys: PushKeys

    @property
    def expires_at(self) -> datetime | None:
        """`expirationTime` as an aware UTC datetime (None when not given)."""
        if self.expiration_time is None:
            return None
        return datetime.fromtimestamp(self.expiration_time / 1000, UTC)


class PushUnsubscribeIn(BaseModel):
    """`DELETE /api/v1/push/subscriptions`: which subscription of which report."""

    model_config = ConfigDict(extra="ignore")
    tracking_token: str = Field(min_length=1, max_length=200)
    endpoint: str = Field(min_length=1, max_length=MAX_ENDPOINT)


class PushKeyOut(BaseModel):
    """The application server key for `pushManager.subscribe`."""

    public_key: str
    subject_set: bool = True


class PushSubscriptionOut(BaseModel):
    id: str
    endpoint: str
    silent: bool
    subscriptions: int  # how many this report has now


def payload_json(title: str, body: str, url: str, silent: bool, tag: str) -> dict[str, Any]:
    """The JSON the service worker receives (web/static/sw.js reads these keys)."""
    return {"title": title, "body": body, "url": url, "silent": silent, "tag": tag}
