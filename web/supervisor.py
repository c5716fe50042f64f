"""The supervisor's page: open escalations with their actions, and the statistics charts."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import col

from api.auth import Principal
from api.deps import CasesDep, DbDep, HtmxDep, SettingsDep
from api.services.alerts import list_alerts
from api.services.stats import breakdown
from core.db import Database
from core.settings import HCMC_TZ
from schema.incidents import AlertOut, IncidentDetail
from schema.stats import GroupBy
from schema.tables import Ward, utcnow
from web import i18n
from web.charts import bars, hour_columns
from web.staffkit import (
    OUTCOMES,
    SUPERVISOR_ROLES,
    ActionPage,
    action_answer,
    active_units,
    page_lang,
    page_user,
    staff_ctx,
)
from web.templating import render

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

def _day(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        return default



CHARTS = (GroupBy.CATEGORY, GroupBy.WARD, GroupBy.HOUR, GroupBy.WEEKDAY)
STALLED_SHOWN = 20  # stalled incidents listed by name; the rest are counted


async def _alerts_context(db: Database, user: Principal) -> dict[str, Any]:
    rows = await list_alerts(db, user, open=True, limit=200)
    # Stalled incidents (no escalation moved their deadline) are a short list of their own
    # above the cards, so however many there are, the escalation cards stay as they are.
    stalled = [a for a in rows if a.kind == "stalled"]
    best: dict[str, Any] = {}
    for a in rows:  # one card an incident: its highest level
        if a.kind != "stalled" and (a.incident_id not in best
                                    or a.level > best[a.incident_id].level):
            best[a.incident_id] = a
    now = utcnow()
    async with db.session() as s:
        names = dict((await s.execute(select(col(Ward.code), col(Ward.name)))).all())

    def shown(a: AlertOut) -> dict[str, Any]:
        return {"a": a, "ward_name": names.get(a.ward_code, ""),
                "overdue_s": (now - a.overdue_since).total_seconds()}

    alerts = [shown(a) for a in sorted(best.values(), key=lambda a: (-a.level, a.overdue_since))]
    return {"alerts": alerts, "stalled": [shown(a) for a in stalled[:STALLED_SHOWN]],
            "stalled_more": max(0, len(stalled) - STALLED_SHOWN),
            "units": await active_units(db) if alerts else [],
            "outcomes": OUTCOMES, "form_key": str(uuid.uuid4())}


async def _stats_context(request: Request, db: Database, user: Principal, lang: str,
                         target: float) -> dict[str, Any]:
    """The statistics section: the same service and figures as GET /stats, for whole
    days in Ho Chi Minh City time."""
    today = datetime.now(HCMC_TZ).date()
    day_to = _day(request.query_params.get("to"), today)
    day_from = _day(request.query_params.get("from"), day_to - timedelta(days=6))
    if day_from > day_to:
        day_from, day_to = day_to, day_from
    start = datetime.combine(day_from, time(), HCMC_TZ).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time(), HCMC_TZ).astimezone(UTC)
    found = await breakdown(db, user, start, end, CHARTS, target=target)
    by = found.groups
    weekdays = {g.key: g.count for g in by[GroupBy.WEEKDAY]}
    week = [SimpleNamespace(key=str(d), count=weekdays.get(str(d), 0)) for d in range(1, 8)]
    return {
        "day_from": day_from.isoformat(), "day_to": day_to.isoformat(), "total": found.total,
        "sla_target": target,
        "by_ward": bars(by[GroupBy.WARD], lambda g: g.label or i18n.t(lang, "staff.none"),
                        top=15),
        "by_category": bars(by[GroupBy.CATEGORY], lambda g: i18n.t(lang, f"cat.{g.key}")),
        "by_hour": hour_columns(by[GroupBy.HOUR]),
        "by_weekday": bars(week, lambda g: i18n.t(lang, f"staff.sup.day.{g.key}")),
    }


@router.get("/supervisor")
async def supervisor_page(request: Request, db: DbDep, htmx: HtmxDep,
                          settings: SettingsDep) -> Response:
    user = await page_user(request, SUPERVISOR_ROLES)
    if isinstance(user, Response):
        return user
    lang = page_lang(request)
    ctx = staff_ctx(request, user, "supervisor")
    ctx.update(await _alerts_context(db, user))
    if htmx and request.query_params.get("part") == "alerts":
        return render(request, "staff/supervisor.html", ctx, block="alerts")
    ctx.update(await _stats_context(request, db, user, lang, settings.sla_target))
    return render(request, "staff/supervisor.html", ctx)


@router.post("/supervisor/incidents/{incident_id}/actions/{action}")
async def supervisor_action(request: Request, incident_id: str, action: str, db: DbDep,
                            cases: CasesDep) -> Response:
    async def alerts(user: Principal, _detail: IncidentDetail) -> dict[str, Any]:
        return await _alerts_context(db, user)

    return await action_answer(request, db, cases, incident_id, action, ActionPage(
        "supervisor", "staff/supervisor.html", "alerts", "/supervisor", alerts,
        SUPERVISOR_ROLES))


