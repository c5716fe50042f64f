"""Flood groups of reports (schema/abuse.py) for the console and the API: list the open
ones, reject a whole group in one action, or declare it not spam.

A group rejection is one `reject` per report through api.services.actions.take_action
(the gateway, roles, versions and the workflow's validators all apply). Only reports still
`received` are rejected: one that somebody already took up (verified, routed, ...), that
joined the group after the operator looked, that moved on since (412) or that the read
model does not have yet is reported back with why, never skipped silently.

Resolving a group is claimed first, in one conditional UPDATE (`resolved IS NULL`), before
anything is done to its reports: of two people acting on one group at once (reject and
not-spam, or two rejects) one wins, the other gets 409 `group_resolved` naming who resolved
it, how and when. A rejection that leaves reports pending gives its claim back, so the
group stays open with what is left.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import structlog
from sqlalchemy import func, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api import scope, wording
from api.abuse import GROUP_EVENT
from api.auth import Principal
from api.cases import Cases
from api.errors import ApiError, not_found
from api.services.actions import take_action
from core.db import Database
from core.settings import HCMC_TZ
from schema import words
from schema.abuse import (
    GroupMember,
    GroupRejectIn,
    GroupRejectResult,
    MemberOutcome,
    ReportGroupOut,
    SourceKind,
    SpamReason,
)
from schema.incidents import is_overdue
from schema.labels import label
from schema.states import Action, State
from schema.tables import (
    FloodGroup,
    Incident,
    IncidentEvent,
    Report,
    ReportFlag,
    ReportSource,
    StaffEvent,
    utcnow,
)

log = structlog.get_logger(__name__)

PENDING = State.RECEIVED.value  # what a group rejection rejects: nobody took it up yet
REJECT_CONCURRENCY = 8


def _may_triage(user: Principal) -> None:
    if not scope.triages_report_groups(user):
        raise ApiError(403, "forbidden", *wording.role_never(Action.REJECT, user.role))


def group_not_found() -> ApiError:
    return not_found(*words.both("error.not_found.group"))


RESOLUTION_WORDS = {"rejected": words.both("group.resolved.rejected"),
                    "not_spam": words.both("group.resolved.not_spam")}


def group_resolved(group: FloodGroup) -> ApiError:
    """409 `group_resolved`: somebody resolved the group first; says how, by whom and when
    (Hồ Chí Minh City time), and carries `resolved`, `resolved_by`, `resolved_at`."""
    how = str(group.resolved)
    vi_how, en_how = RESOLUTION_WORDS.get(how, (how, how))
    at = group.resolved_at.astimezone(HCMC_TZ) if group.resolved_at else None
    when = at.strftime("%H:%M:%S %d/%m/%Y") if at else "?"
    return ApiError(409, "group_resolved",
                    words.t("vi", "error.group_resolved", how=vi_how, by=group.resolved_by,
                            when=when),
                    words.t("en", "error.group_resolved", how=en_how, by=group.resolved_by,
                            when=when),
                    resolved=how, resolved_by=group.resolved_by,
                    resolved_at=group.resolved_at.isoformat() if group.resolved_at else None)


async def _groups_out(s: AsyncSession, groups: list[FloodGroup]) -> list[ReportGroupOut]:
    if not groups:
        return []
    ids = [g.id for g in groups]
    rows = (await s.execute(
        select(ReportFlag, Report, Incident)
        .join(Report, col(Report.id) == col(ReportFlag.report_id))
        .outerjoin(Incident, col(Incident.id) == col(ReportFlag.report_id))
        .where(col(ReportFlag.flood_group).in_(ids))
        .order_by(col(Report.created_at)))).all()
    devices = dict((await s.execute(
        select(col(ReportFlag.flood_group), func.count(func.distinct(col(ReportSource.key))))
        .join(ReportSource, col(ReportSource.report_id) == col(ReportFlag.report_id))
        .where(col(ReportFlag.flood_group).in_(ids),
               col(ReportSource.kind) == SourceKind.DEVICE.value)
        .group_by(col(ReportFlag.flood_group)))).all())
    now = utcnow()
    members: dict[str, list[GroupMember]] = {g: [] for g in ids}
    for flag, report, row in rows:
        loc = report.payload.get("location", {})
        members[str(flag.flood_group)].append(GroupMember(
            incident_id=report.id, tracking_code=report.tracking_code,
            created_at=report.created_at,
            lat=row.lat if row else loc.get("lat", 0.0),
            lon=row.lon if row else loc.get("lon", 0.0),
            category=row.category if row else report.payload.get("category", "other"),
            ward_code=row.ward_code if row else None,
            state=row.state if row else None, version=row.version if row else None,
            deadline=row.deadline if row else None,
            escalation_level=row.escalation_level if row else 0,
            overdue=is_overdue(row.is_open, row.escalation_level, row.deadline, now)
            if row else False,
            suspected_spam=flag.suspected_spam and flag.cleared_at is None,
            reasons=[SpamReason.model_validate(r) for r in flag.reasons or []]))
    out = []
    for g in groups:
        ms = members[g.id]
        out.append(ReportGroupOut(
            id=g.id, source=SourceKind(g.kind), size=len(ms), first_at=g.first_at,
            last_at=g.last_at, span_s=(g.last_at - g.first_at).total_seconds(),
            pending=sum(1 for m in ms if m.state in (None, PENDING)),
            devices=int(devices.get(g.id, 0)), resolved=g.resolved,
            resolved_by=g.resolved_by, resolved_at=g.resolved_at, members=ms))
    return out


async def open_groups(db: Database, user: Principal, limit: int = 50) -> list[ReportGroupOut]:
    """Unresolved groups that still hold a report nobody took up, newest first (none
    for an officer: api/scope.py)."""
    if not scope.sees_report_groups(user):
        return []
    async with db.session() as s:
        groups = list((await s.execute(
            select(FloodGroup).where(col(FloodGroup.resolved).is_(None))
            .order_by(col(FloodGroup.last_at).desc()).limit(limit))).scalars().all())
        out = await _groups_out(s, groups)
    return [g for g in out if g.pending]


async def get_group(db: Database, user: Principal, group_id: str) -> ReportGroupOut:
    """One group, resolved or not; 404 when there is no such group or `user` may not
    see groups (an officer), and for an id that is no group id at all (a UUID)."""
    try:
        group_id = str(uuid.UUID(group_id))
    except ValueError:
        raise group_not_found() from None
    async with db.session() as s:
        group = await s.get(FloodGroup, group_id)
        if group is None or not scope.sees_report_groups(user):
            raise group_not_found()
        return (await _groups_out(s, [group]))[0]


def _refusal(member: GroupMember, error: str, vi: str, en: str, lang: str) -> MemberOutcome:
    return MemberOutcome(incident_id=member.incident_id, tracking_code=member.tracking_code,
                         ok=False, state=member.state, error=error,
                         detail=en if lang == "en" else vi)


async def _reject_one(db: Database, cases: Cases, user: Principal, group_id: str,
                      member: GroupMember, body: GroupRejectIn, lang: str) -> MemberOutcome:
    if member.state is None or member.version is None:
        return _refusal(member, "not_ready", *words.both("group.refused.not_ready"), lang)
    if member.state != PENDING:
        state = State(member.state)
        return _refusal(member, "not_pending",
                        words.t("vi", "group.refused.not_pending", state=label(state, "vi")),
                        words.t("en", "group.refused.not_pending", state=label(state, "en")),
                        lang)
    version = member.version
    if body.versions is not None:
        if member.incident_id not in body.versions:
            return _refusal(member, "not_shown", *words.both("group.refused.not_shown"), lang)
        version = body.versions[member.incident_id]
    try:
        after = await take_action(db, cases, user, member.incident_id, Action.REJECT,
                                  {"reason": body.reason},
                                  idempotency_key=f"group:{group_id}:{user.username}",
                                  expected_version=version)
    except ApiError as exc:
        by = await _rejected_by(db, member.incident_id)
        if by is not None and by != user.username:
            return _refusal(member, "already_rejected",
                            *words.both("group.refused.already_rejected", by=by), lang)
        return _refusal(member, exc.error, exc.vi, exc.en, lang)
    return MemberOutcome(incident_id=member.incident_id, tracking_code=member.tracking_code,
                         ok=True, state=after.state.value)


async def _rejected_by(db: Database, incident_id: str) -> str | None:
    """Who rejected the incident (its latest `reject` event), None when nobody did."""
    async with db.session() as s:
        return (await s.execute(
            select(col(IncidentEvent.actor))
            .where(col(IncidentEvent.incident_id) == incident_id,
                   col(IncidentEvent.action) == Action.REJECT.value)
            .order_by(col(IncidentEvent.seq).desc()).limit(1))).scalars().first()


async def _claim(db: Database, group_id: str, how: str, user: Principal) -> None:
    """Mark the group resolved as `how` by `user`, only if nobody did yet (one conditional
    UPDATE: atomic on PostgreSQL and SQLite alike). "not_spam" also clears the reports'
    marks and tells the consoles, in the same transaction. 409 (group_resolved) when
    somebody was first."""
    now = utcnow()
    async with db.session() as s:
        won = await s.execute(update(FloodGroup).where(col(FloodGroup.id) == group_id,
                                                       col(FloodGroup.resolved).is_(None))
                              .values(resolved=how, resolved_by=user.username,
                                      resolved_at=now))
        if won.rowcount != 1:  # type: ignore[attr-defined]
            await s.rollback()
            group = await s.get(FloodGroup, group_id)
            if group is None:
                raise group_not_found()
            raise group_resolved(group)
        if how == "not_spam":
            await s.execute(update(ReportFlag).where(col(ReportFlag.flood_group) == group_id,
                                                     col(ReportFlag.cleared_at).is_(None))
                            .values(cleared_by=user.username, cleared_at=now))
            s.add(StaffEvent(kind=GROUP_EVENT, at=now,
                             payload={"group_id": group_id, "change": how}))
        await s.commit()


async def _release(db: Database, group_id: str, user: Principal) -> None:
    """Give back `user`'s "rejected" claim (the rejection left reports pending)."""
    async with db.session() as s:
        await s.execute(update(FloodGroup).where(col(FloodGroup.id) == group_id,
                                                 col(FloodGroup.resolved) == "rejected",
                                                 col(FloodGroup.resolved_by) == user.username)
                        .values(resolved=None, resolved_by=None, resolved_at=None))
        await s.commit()


async def _announce(db: Database, group_id: str, change: str, at: datetime) -> None:
    async with db.session() as s:
        s.add(StaffEvent(kind=GROUP_EVENT, at=at, payload={"group_id": group_id,
                                                           "change": change}))
        await s.commit()


async def reject_group(db: Database, cases: Cases, user: Principal, group_id: str,
                       body: GroupRejectIn, lang: str = "vi") -> GroupRejectResult:
    """Reject every pending report of the group, each through its own workflow (at most
    REJECT_CONCURRENCY at once). The group is claimed as `rejected` first and stays so once
    no report of it is pending any more; otherwise the claim is given back and it stays
    open with what is left. 403 for a role that may not reject, 404 for an unknown group,
    409 `group_resolved` when somebody resolved it first (or is rejecting it right now);
    per-report failures are in the result (`already_rejected` names who did)."""
    _may_triage(user)
    group = await get_group(db, user, group_id)
    await _claim(db, group_id, "rejected", user)
    sem = asyncio.Semaphore(REJECT_CONCURRENCY)

    async def one(member: GroupMember) -> MemberOutcome:
        async with sem:
            return await _reject_one(db, cases, user, group_id, member, body, lang)

    try:
        outcomes = await asyncio.gather(*(one(m) for m in group.members))
    except BaseException:
        await _release(db, group_id, user)
        raise
    rejected = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    after = await get_group(db, user, group_id)
    if not after.pending:
        await _announce(db, group_id, "rejected", utcnow())
    else:
        await _release(db, group_id, user)
        after = await get_group(db, user, group_id)
        if rejected:
            await _announce(db, group_id, "rejected_some", utcnow())
    log.info("report group rejected", group_id=group_id, rejected=len(rejected),
             failed=len(failed), actor=user.username)
    return GroupRejectResult(group_id=group_id, rejected=rejected, failed=failed, group=after)


async def clear_group(db: Database, user: Principal, group_id: str) -> ReportGroupOut:
    """"Not spam": the group is resolved as `not_spam` and its reports' marks are cleared
    (who and when are kept); its reports go on as any others. 403/404 as above, 409
    `group_resolved` when somebody resolved it first (or is rejecting it right now)."""
    _may_triage(user)
    await get_group(db, user, group_id)
    await _claim(db, group_id, "not_spam", user)
    log.info("report group cleared", group_id=group_id, actor=user.username)
    return await get_group(db, user, group_id)
