"""A staff action on an incident: check who may, read the body, look up what it needs,
run the workflow update through the gateway, answer with the incident as GET shows it."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api import idempotency
from api.auth import Principal
from api.cases import CaseEnded, CaseNotFound, CaseRefused, Cases, checking
from api.errors import ApiError, field_error
from api.services import receipts
from api.services.attachments import claim_attachments
from api.services.detail import incident_detail, visible_row
from core.db import Database
from schema import payloads as p
from schema import rules, words
from schema.actions import BODIES, ActionBody, MergeBody, NoteBody, Resolved, RouteBody
from schema.incidents import IncidentDetail
from schema.states import Action, State
from schema.tables import Incident, IncidentEvent, Report, Unit

log = structlog.get_logger(__name__)

MAX_IDEMPOTENCY_KEY = 200  # the Idempotency-Key header and the forms


async def left_unit(s: AsyncSession, user: Principal, incident_id: str) -> bool:
    """Whether the incident was once assigned to the officer's unit and has left it
    (re-routed, reassigned, merged or cancelled): their phone may still show it."""
    if not user.is_officer or not user.unit_id:
        return False
    events = (await s.execute(select(IncidentEvent).where(
        col(IncidentEvent.incident_id) == incident_id,
        col(IncidentEvent.action).in_(("route", "reassign"))))).scalars().all()
    return any((e.data or {}).get("unit_id") == user.unit_id for e in events)


def parse_body(action: Action, body: dict[str, Any] | None) -> ActionBody:
    """The action's body model; a RequestValidationError (422) when it does not fit."""
    try:
        return BODIES[action].model_validate(body or {})
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc


async def resolve_unit(s: AsyncSession, unit_id: str | None, ward_code: int | None
                       ) -> p.UnitRef:
    """The active unit by id or code, or the ward police of `ward_code`; 422 otherwise."""
    if unit_id is not None:
        unit = await s.get(Unit, unit_id) or (await s.execute(
            select(Unit).where(col(Unit.code) == unit_id))).scalars().first()
        field = "unit_id"
    else:
        unit = (await s.execute(select(Unit).where(
            col(Unit.ward_code) == ward_code, col(Unit.kind) == "ward_police",
            col(Unit.active)))).scalars().first()
        field = "ward_code"
    if unit is None or not unit.active:
        raise field_error(field, *words.both("field.unit.unknown"))
    return p.UnitRef(id=unit.id, name=unit.name, kind=unit.kind, ward_code=unit.ward_code)


async def _resolve(s: AsyncSession, body: ActionBody, incident_id: str,
                   key: str | None) -> Resolved:
    if isinstance(body, RouteBody):
        return Resolved(unit=await resolve_unit(s, body.unit_id, body.ward_code))
    if isinstance(body, MergeBody):
        target_id = str(body.into_incident_id)
        with checking():
            rules.check_merge_target(incident_id, target_id, None)
        target = await s.get(Incident, target_id)
        if target is None:
            # Accepted a moment ago and not yet in the read model: its workflow decides.
            report = await s.get(Report, target_id)
            if report is None:
                raise field_error("into_incident_id",
                                  *words.both("field.into_incident_id.unknown"))
            return Resolved(target_tracking_code=report.tracking_code)
        with checking():  # an ended target stays ended: the workflow would refuse alike
            rules.check_merge_target(incident_id, target_id, State(target.state))
        return Resolved(target_tracking_code=target.tracking_code)
    if isinstance(body, NoteBody):
        await claim_attachments(s, body.attachment_ids, incident_id)
        await s.commit()
    if body.action is Action.PUBLISH_ALERT:
        return Resolved(alert_id=str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                f"canhbao:{incident_id}:{key}")
                                     if key else uuid.uuid4()))
    return Resolved()


def check_key(idempotency_key: str | None) -> None:
    """422 for a key the Idempotency-Key header could not carry (over
    MAX_IDEMPOTENCY_KEY characters, or not printable: a form field can send a NUL, which
    the database refuses)."""
    if idempotency_key is not None and not (
            len(idempotency_key) <= MAX_IDEMPOTENCY_KEY and idempotency_key.isprintable()):
        raise field_error("idempotency_key", *words.both("field.idempotency_key.invalid"))


async def take_action(db: Database, cases: Cases, user: Principal, incident_id: str,
                      action: Action, body: dict[str, Any] | None,
                      idempotency_key: str | None = None,
                      expected_version: int | None = None) -> IncidentDetail:
    """Run `action` for `user`. `expected_version` (If-Match) makes the workflow refuse a
    case that moved on (412). Raises 403/404/409/412/422/503 as ApiError (or
    RequestValidationError for the body).

    With an `idempotency_key`, the same key again (same user, action, body and If-Match)
    returns the first answer, whatever it was (the incident, or the workflow's refusal),
    also after the incident ended, and changes nothing (api/services/receipts.py); the
    same key with another request is a 409 (idempotency.KeyReused). An update whose outcome
    is unknown answers 503 (cases.OutcomeUnknown): the same key again gets the outcome.
    A key the Idempotency-Key header could not carry is a 422 (`check_key`)."""
    check_key(idempotency_key)
    async with db.session() as s:
        try:
            row, _ = await visible_row(s, user, incident_id)
        except ApiError as exc:
            if exc.status == 404 and await left_unit(s, user, incident_id):
                raise ApiError(409, "moved", *words.both("error.moved")) from exc
            raise
    role = user.role
    with checking():
        rules.check_role(action, role)
    parsed = parse_body(action, body)
    key = receipts.Key(incident_id, action.value, idempotency_key, idempotency.action_fingerprint(
        user.username, action.value, parsed.model_dump(mode="json"), expected_version)
    ) if idempotency_key else None
    if key is not None:
        first = await receipts.first_answer(db, key)
        if first is not None:
            log.info("action repeated", action=action.value, actor=user.username)
            return first
    if row is not None and not row.is_open:
        if key is not None and await receipts.applied(db, key):
            return await _applied_answer(db, cases, user, key)
        with checking():  # an ended incident stays ended: the workflow would refuse alike
            rules.permit(action, role, State(row.state))
    async with db.session() as s:
        found = await _resolve(s, parsed, incident_id, idempotency_key)
    try:
        inp = parsed.to_input(user.actor(), found)
        if expected_version is not None:
            inp = inp.model_copy(update={"expected_version": expected_version})
        await cases.update(incident_id, action.value, inp,
                           update_id=key.update_id if key else None)
    except (CaseRefused, CaseEnded) as exc:
        if key is not None and isinstance(exc, CaseEnded) and await receipts.applied(db, key):
            return await _applied_answer(db, cases, user, key)
        if key is not None:
            await receipts.keep_refusal(db, key, exc)
        raise
    except CaseNotFound as exc:
        if row is None:
            raise
        raise ApiError(409, "illegal_transition",
                       *words.both("error.illegal_transition.ended")) from exc
    log.info("action taken", action=action.value, actor=user.username)
    detail = await incident_detail(db, cases, user, incident_id)
    if key is not None:
        await receipts.keep_answer(db, key, detail)
    return detail


async def _applied_answer(db: Database, cases: Cases, user: Principal,
                          key: receipts.Key) -> IncidentDetail:
    """The action was applied (its event carries the key) but its first answer was never
    kept (it timed out, or the process died): the incident as it is now, kept as the
    answer from here on."""
    log.info("action found applied", action=key.action, actor=user.username)
    detail = await incident_detail(db, cases, user, key.incident_id)
    await receipts.keep_answer(db, key, detail)
    return detail
