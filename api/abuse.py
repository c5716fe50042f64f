"""Marking reports that come too often from one source, at intake (policy and figures:
schema/abuse.py). Nothing here can refuse or lose a report: `mark` runs after the report
and its outbox row are committed, and any failure of its own is logged and swallowed.

Counting is in SQL (`report_sources`), so every API process sees the same figures; the
reports of one source are serialised by a PostgreSQL advisory lock per (kind, key) held
for the marking transaction (SQLite has one writer), so concurrent reports of a burst
cannot both miss a limit or open two groups.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, func, select, text
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.throttle import address_key
from core.db import Database
from schema.abuse import MAX_DEVICE_ID, AbusePolicy, Rate, SourceKind, SpamReason
from schema.tables import FloodGroup, ReportFlag, ReportSource, StaffEvent

log = structlog.get_logger(__name__)

MARK_TIMEOUT_S = 3.0  # marking never holds a report's workflow start for longer
GROUP_EVENT = "reports.group"  # the staff event when a group forms or is resolved


@dataclass(frozen=True)
class ReportOrigin:
    """Where a report came from, as the route saw it: the client address
    (api.auth.client_address) and the device id the client sent, if any."""

    address: str = ""
    device: str | None = None


def source_keys(origin: ReportOrigin | None, phone: str | None
                ) -> list[tuple[SourceKind, str]]:
    """The (kind, key) pairs a report is counted under, in a fixed order (the lock order).
    The address counts by api.throttle.address_key (IPv6 by its /64)."""
    keys: list[tuple[SourceKind, str]] = []
    if origin and origin.device and origin.device.strip():
        keys.append((SourceKind.DEVICE, origin.device.strip()[:MAX_DEVICE_ID]))
    if phone:
        keys.append((SourceKind.PHONE, phone))
    if origin and origin.address:
        keys.append((SourceKind.ADDRESS, address_key(origin.address)))
    return keys


def _lock_id(kind: SourceKind, key: str) -> int:
    digest = hashlib.sha256(f"canhbao.abuse:{kind}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _count(s: AsyncSession, kind: SourceKind, key: str, since: datetime) -> int:
    return int((await s.execute(select(func.count()).where(
        col(ReportSource.kind) == kind.value, col(ReportSource.key) == key,
        col(ReportSource.at) > since))).scalar_one())


async def _flag(s: AsyncSession, report_id: str, at: datetime) -> ReportFlag:
    flag = await s.get(ReportFlag, report_id)
    if flag is None:
        flag = ReportFlag(report_id=report_id, flagged_at=at)
        s.add(flag)
        await s.flush()
    return flag


async def _join_flood(s: AsyncSession, kind: SourceKind, key: str, flood: Rate,
                      report_id: str, at: datetime) -> tuple[str | None, bool]:
    """The flood group this report belongs to (and whether it was opened just now): the
    source's open group when its last report is less than the window ago, else a new one
    once the source has `flood.count` reports within the window (those join it too)."""
    window = timedelta(seconds=flood.window_s)
    group = (await s.execute(select(FloodGroup).where(
        col(FloodGroup.kind) == kind.value, col(FloodGroup.key) == key,
        col(FloodGroup.resolved).is_(None), col(FloodGroup.last_at) > at - window)
        .order_by(col(FloodGroup.last_at).desc()).limit(1))).scalars().first()
    if group is not None:
        group.last_at = max(group.last_at, at)
        group.size += 1
        s.add(group)
        (await _flag(s, report_id, at)).flood_group = group.id
        return group.id, False
    recent = (await s.execute(select(col(ReportSource.report_id), col(ReportSource.at)).where(
        col(ReportSource.kind) == kind.value, col(ReportSource.key) == key,
        col(ReportSource.at) > at - window).order_by(col(ReportSource.at)))).all()
    if len(recent) < flood.count:
        return None, False
    group = FloodGroup(kind=kind.value, key=key, first_at=recent[0][1], last_at=at, size=0)
    s.add(group)
    for rid, _ in recent:
        flag = await _flag(s, rid, at)
        if flag.flood_group is None:
            flag.flood_group = group.id
            group.size += 1
    return group.id, True


async def _mark(db: Database, policy: AbusePolicy, report_id: str,
                keys: list[tuple[SourceKind, str]], at: datetime) -> ReportFlag | None:
    async with db.session() as s:
        if not db.is_sqlite:
            for kind, key in keys:
                await s.execute(text("SELECT pg_advisory_xact_lock(:id)"),
                                {"id": _lock_id(kind, key)})
        for kind, key in keys:
            s.add(ReportSource(report_id=report_id, kind=kind.value, key=key, at=at))
        await s.flush()
        reasons: list[SpamReason] = []
        group_id: str | None = None
        opened = False
        for kind, key in keys:
            for rate in policy.limits[kind]:
                count = await _count(s, kind, key, at - timedelta(seconds=rate.window_s))
                if count > rate.count:
                    reasons.append(SpamReason(source=kind, limit=rate.count,
                                              window_s=rate.window_s, count=count))
            flood = policy.flood[kind]
            if flood is not None and group_id is None:
                group_id, opened = await _join_flood(s, kind, key, flood, report_id, at)
            if policy.longest_window_s:  # rows no window looks at any more
                await s.execute(delete(ReportSource).where(
                    col(ReportSource.kind) == kind.value, col(ReportSource.key) == key,
                    col(ReportSource.at) < at - timedelta(seconds=policy.longest_window_s)))
        flag: ReportFlag | None = None
        if reasons:
            flag = await _flag(s, report_id, at)
            flag.suspected_spam = True
            flag.reasons = [r.model_dump(mode="json") for r in reasons]
        elif group_id is not None:
            flag = await s.get(ReportFlag, report_id)
        if opened:
            s.add(StaffEvent(kind=GROUP_EVENT, at=at,
                             payload={"group_id": group_id, "change": "opened"}))
        await s.commit()
        if flag is not None:
            await s.refresh(flag)
        return flag


async def mark(db: Database, policy: AbusePolicy, report_id: str,
               origin: ReportOrigin | None, phone: str | None,
               at: datetime) -> ReportFlag | None:
    """Count the accepted report under its sources and mark it when it is past a limit or
    part of a flood (the ReportFlag row, or None when it is neither). Never raises: a
    report is never refused or lost because counting failed."""
    keys = source_keys(origin, phone)
    if not keys:
        return None
    try:
        flag = await asyncio.wait_for(_mark(db, policy, report_id, keys, at), MARK_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - the report stands whatever happens here
        log.exception("report source counting failed", incident_id=report_id)
        return None
    if flag is not None and flag.suspected_spam:
        log.info("report marked as suspected spam", incident_id=report_id,
                 reasons=flag.reasons, flood_group=flag.flood_group)
    return flag
