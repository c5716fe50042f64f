"""Marking reports that come too often from one source, at intake (policy and figures:
schema/abuse.py). Nothing here can refuse or lose a report: `mark` runs after the report
and its outbox row are committed, and any failure of its own is logged and swallowed.

Counting is in SQL (`report_sources`, written in the report's own transaction), so every
API process sees the same figures and no accepted report goes uncounted; each report
counts the rows stored up to its own. Joining or opening a flood group is serialised per
source by a PostgreSQL advisory lock taken without waiting (SQLite has one writer), so
concurrent reports of a burst cannot open two groups, and a flood never holds database
connections waiting for one another.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import case, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.throttle import address_key
from core.db import Database
from schema.abuse import MAX_DEVICE_ID, AbusePolicy, Rate, SourceKind, SpamReason
from schema.tables import FloodGroup, ReportFlag, ReportSource, StaffEvent

log = structlog.get_logger(__name__)

MARK_TIMEOUT_S = 30.0  # marking never holds a report's answer longer than this (only
# the reports of a source in flood wait for one another, and only for the group step)
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


def source_rows(report_id: str, origin: ReportOrigin | None, phone: str | None,
                at: datetime) -> list[ReportSource]:
    """The rows that count a report under its sources. The intake adds them in the
    report's own transaction (api/services/submission.py), so an accepted report is always
    counted, even when marking it then fails or waits too long."""
    return [ReportSource(report_id=report_id, kind=kind.value, key=key, at=at)
            for kind, key in source_keys(origin, phone)]


async def _counts(s: AsyncSession, row: ReportSource, rates: list[Rate]) -> list[int]:
    """For each rate, the reports of the row's source within its window up to and
    including this one (rows are numbered in the order they were stored)."""
    if not rates:
        return []
    since = [row.at - timedelta(seconds=r.window_s) for r in rates]
    sums = [func.coalesce(func.sum(case((col(ReportSource.at) > t, 1), else_=0)), 0)
            for t in since]
    found = (await s.execute(select(*sums).where(
        col(ReportSource.kind) == row.kind, col(ReportSource.key) == row.key,
        col(ReportSource.id) <= row.id, col(ReportSource.at) > min(since)))).one()
    return [int(n) for n in found]


async def _flag(s: AsyncSession, report_id: str, at: datetime) -> ReportFlag:
    """The report's flag, created when it has none. Created by INSERT ... ON CONFLICT DO
    NOTHING, then read: a report's own marking and another report's group step may both
    create it at once (a read-then-insert would then fail on the primary key and lose
    that transaction's marks). The caller changes only the columns it sets."""
    dialect = sqlite if s.get_bind().dialect.name == "sqlite" else postgresql
    await s.execute(dialect.insert(ReportFlag).values(
        report_id=report_id, suspected_spam=False, reasons=[], flagged_at=at)
        .on_conflict_do_nothing(index_elements=["report_id"]))
    flag = await s.get(ReportFlag, report_id)
    if flag is None:  # cannot be: the row was there or was just inserted
        raise RuntimeError(f"report flag {report_id} vanished")
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
        # This report, and any of the source's since the group opened that missed it
        # (their marking gave up waiting): the group converges on the whole burst.
        stragglers = (await s.execute(
            select(col(ReportSource.report_id)).outerjoin(
                ReportFlag, col(ReportFlag.report_id) == col(ReportSource.report_id))
            .where(col(ReportSource.kind) == kind.value, col(ReportSource.key) == key,
                   col(ReportSource.at) >= group.first_at,
                   col(ReportFlag.flood_group).is_(None)))).scalars().all()
        for rid in {report_id, *stragglers}:
            flag = await _flag(s, rid, at)
            if flag.flood_group is None:
                flag.flood_group = group.id
                group.size += 1
        s.add(group)
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


async def _open_group_id(s: AsyncSession, kind: SourceKind, key: str, since: datetime
                         ) -> str | None:
    return (await s.execute(select(col(FloodGroup.id)).where(
        col(FloodGroup.kind) == kind.value, col(FloodGroup.key) == key,
        col(FloodGroup.resolved).is_(None), col(FloodGroup.last_at) > since)
        .limit(1))).scalars().first()


async def _count_and_flag(db: Database, policy: AbusePolicy, report_id: str,
                          rows: list[ReportSource], at: datetime
                          ) -> list[tuple[SourceKind, str, Rate]]:
    """Mark the report past its limits (no lock: each report counts the rows stored up to
    its own). Returns the sources whose flood figure is reached or whose group is open."""
    floods: list[tuple[SourceKind, str, Rate]] = []
    async with db.session() as s:
        reasons: list[SpamReason] = []
        for row in rows:
            kind = SourceKind(row.kind)
            rates = policy.limits[kind]
            flood = policy.flood[kind]
            counts = await _counts(s, row, rates + ([flood] if flood else []))
            for rate, count in zip(rates, counts, strict=False):
                if count > rate.count:
                    reasons.append(SpamReason(source=kind, limit=rate.count,
                                              window_s=rate.window_s, count=count))
            if flood is not None and (
                    counts[-1] >= flood.count or await _open_group_id(
                        s, kind, row.key, at - timedelta(seconds=flood.window_s))):
                floods.append((kind, row.key, flood))
            if policy.longest_window_s:  # rows no window looks at any more
                await s.execute(delete(ReportSource).where(
                    col(ReportSource.kind) == row.kind, col(ReportSource.key) == row.key,
                    col(ReportSource.at) < at - timedelta(seconds=policy.longest_window_s)))
        if reasons:
            flag = await _flag(s, report_id, at)
            flag.suspected_spam = True
            flag.reasons = [r.model_dump(mode="json") for r in reasons]
        await s.commit()
    return floods


async def _group(db: Database, kind: SourceKind, key: str, flood: Rate, report_id: str,
                 at: datetime) -> bool:
    """Join or open the source's flood group under its advisory lock, taken without
    waiting: while another report of the source holds it, the connection goes back to the
    pool and this tries again shortly (a flood never ties up the pool). False while the
    lock was busy."""
    async with db.session() as s:
        if not db.is_sqlite and not (await s.execute(
                text("SELECT pg_try_advisory_xact_lock(:id)"),
                {"id": _lock_id(kind, key)})).scalar_one():
            return False
        group_id, opened = await _join_flood(s, kind, key, flood, report_id, at)
        if opened:
            s.add(StaffEvent(kind=GROUP_EVENT, at=at,
                             payload={"group_id": group_id, "change": "opened"}))
        await s.commit()
        return True


async def _mark(db: Database, policy: AbusePolicy, report_id: str,
                rows: list[ReportSource], at: datetime) -> ReportFlag | None:
    floods = await _count_and_flag(db, policy, report_id, rows, at)
    if floods:  # one group per report: the first source (device, phone, address) in flood
        kind, key, flood = floods[0]
        while not await _group(db, kind, key, flood, report_id, at):
            await asyncio.sleep(random.uniform(0.02, 0.1))
    async with db.session() as s:
        return await s.get(ReportFlag, report_id)


async def mark(db: Database, policy: AbusePolicy, report_id: str,
               rows: list[ReportSource], at: datetime) -> ReportFlag | None:
    """Mark the accepted report (its `source_rows`, already stored) when it is past a limit
    or part of a flood: the ReportFlag row, or None when it is neither. Never raises: a
    report is never refused or lost because marking failed; waiting for the other reports
    of the same source is bounded by MARK_TIMEOUT_S (only a flooding source waits)."""
    if not rows:
        return None
    try:
        flag = await asyncio.wait_for(_mark(db, policy, report_id, rows, at), MARK_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - the report stands whatever happens here
        log.exception("marking a report failed", incident_id=report_id)
        return None
    if flag is not None and flag.suspected_spam:
        log.info("report marked as suspected spam", incident_id=report_id,
                 reasons=flag.reasons, flood_group=flag.flood_group)
    return flag
