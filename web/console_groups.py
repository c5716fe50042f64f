"""Flood groups in the operator's console (schema/abuse.py): which groups the queue shows
as one row, the marks of single reports, the small map of a group's points, and the
toast that sums up a group rejection. The actions themselves run through
api.services.report_groups (never through a route handler)."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from api import scope
from api.auth import Principal
from api.services.report_groups import open_groups
from core.db import Database
from schema.abuse import GroupMember, GroupRejectResult, ReportGroupOut, SpamReason
from schema.tables import ReportFlag
from web import i18n
from web.templating import templates

MAP_W, MAP_H, MAP_PAD = 120, 72, 6  # the group's small map, in CSS pixels


def collapses(filters: dict[str, str]) -> bool:
    """Groups are shown as one row in the queue itself (open or new reports, no search);
    any narrower view lists every report on its own."""
    return filters.get("state", "") in ("", "received") and not filters.get("q")


async def queue_groups(db: Database, user: Principal, filters: dict[str, str]
                       ) -> list[ReportGroupOut]:
    """The open groups the console shows as rows (none for officers or narrower views):
    those with a pending report that fits the ward, category and overdue filters."""
    if not collapses(filters) or not scope.sees_report_groups(user):
        return []
    ward, category = filters.get("ward", ""), filters.get("category", "")
    overdue = filters.get("overdue") == "1"

    def fits(m: GroupMember) -> bool:
        return (m.state in (None, "received")
                and (not ward or str(m.ward_code) == ward)
                and (not category or m.category == category)
                and (not overdue or m.overdue))

    return [g for g in await open_groups(db, user) if any(fits(m) for m in g.members)]


async def spam_marks(db: Database, ids: list[str]) -> dict[str, list[SpamReason]]:
    """Which of `ids` are marked as suspected spam (not cleared), with their reasons."""
    if not ids:
        return {}
    async with db.session() as s:
        rows = (await s.execute(select(ReportFlag).where(
            col(ReportFlag.report_id).in_(ids), col(ReportFlag.suspected_spam),
            col(ReportFlag.cleared_at).is_(None)))).scalars().all()
    return {r.report_id: [SpamReason.model_validate(x) for x in r.reasons or []] for r in rows}


def reason_text(lang: str, reason: SpamReason) -> str:
    """"12 báo tin trong 10 phút từ cùng một địa chỉ mạng (giới hạn 10)"."""
    return i18n.t(lang, "staff.spam.reason", n=reason.count, limit=reason.limit,
                  window=window_text(lang, reason.window_s),
                  source=i18n.t(lang, f"source.{reason.source.value}"))


templates.env.globals["spam_reason"] = reason_text


def window_text(lang: str, seconds: float) -> str:
    """A time span in whole minutes, hours or days (at least one minute)."""
    if seconds >= 86400 and seconds % 86400 == 0:
        return i18n.t(lang, "staff.span.days", n=int(seconds // 86400))
    if seconds >= 3600 and seconds % 3600 == 0:
        return i18n.t(lang, "staff.span.hours", n=int(seconds // 3600))
    return i18n.t(lang, "staff.span.minutes", n=max(1, math.ceil(seconds / 60)))


def map_points(group: ReportGroupOut) -> list[dict[str, float]]:
    """The group's points scaled into a MAP_W × MAP_H box (north up), for an inline SVG."""
    lats = [m.lat for m in group.members]
    lons = [m.lon for m in group.members]
    if not lats:
        return []
    span = max(max(lats) - min(lats), max(lons) - min(lons), 0.002)  # at least ~200 m
    scale = min(MAP_W - 2 * MAP_PAD, MAP_H - 2 * MAP_PAD) / span
    mid_lat, mid_lon = (max(lats) + min(lats)) / 2, (max(lons) + min(lons)) / 2
    return [{"x": round(MAP_W / 2 + (m.lon - mid_lon) * scale, 1),
             "y": round(MAP_H / 2 - (m.lat - mid_lat) * scale, 1)} for m in group.members]


def reject_summary(lang: str, result: GroupRejectResult) -> tuple[str, str]:
    """The toast after a group rejection, and its kind: all done (ok), or which reports
    were not rejected and why (error: nothing is skipped silently)."""
    done = i18n.t(lang, "staff.group.rejected", n=len(result.rejected))
    if not result.failed:
        return done, "ok"
    why = "; ".join(f"{o.tracking_code}: {o.detail}" for o in result.failed)
    return f"{done} {i18n.t(lang, 'staff.group.failed', n=len(result.failed))} {why}", "error"


def group_view(lang: str, group: ReportGroupOut) -> dict[str, Any]:
    """What the group's row shows beside the group itself."""
    return {"g": group, "points": map_points(group),
            "span": window_text(lang, group.span_s),
            "overdue": any(m.overdue for m in group.members),
            "versions": {m.incident_id: m.version for m in group.members
                         if m.version is not None and m.state == "received"},
            "first_deadline": min((m.deadline for m in group.members
                                   if m.deadline and m.state == "received"), default=None)}
