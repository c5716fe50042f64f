"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest
from sqlalchemy import func, select, text
from sqlmodel import col

from api.deps import DbDep, InfraDep, LangDep
from api.infra import Infra
from schema import words
from schema.tables import Alert, Outbox

router = APIRouter(tags=["operations"])

ESCALATIONS = Gauge("canhbao_escalations", "Escalation alerts recorded (all processes)",
                    ["level"])
OPEN_ALERTS = Gauge("canhbao_open_alerts", "Escalation alerts not yet resolved")
OUTBOX_PENDING = Gauge("canhbao_intake_outbox_pending",
                       "Accepted reports whose workflow is not started yet")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _check_db(infra: Infra) -> None:
    async with infra.db.session() as s:
        await s.execute(text("SELECT 1"))


async def _check_temporal(infra: Infra) -> None:
    if not await infra.temporal.healthy():
        raise RuntimeError(infra.temporal.last_error or "unhealthy")


async def _check_storage(infra: Infra) -> None:
    await infra.storage.ready()


@router.get("/readyz", responses={503: {"model": dict}})
async def readyz(infra: InfraDep, lang: LangDep) -> JSONResponse:
    """200 when the database, Temporal and storage answer; 503 naming those that do not."""
    checks = {"db": _check_db, "temporal": _check_temporal, "storage": _check_storage}
    results = await asyncio.gather(
        *(asyncio.wait_for(fn(infra), 5) for fn in checks.values()), return_exceptions=True)
    status = {name: ("ok" if not isinstance(r, BaseException) else "down")
              for name, r in zip(checks, results, strict=True)}
    down = [n for n, s in status.items() if s != "ok"]
    if down:
        detail = words.t(lang, "error.not_ready", down=", ".join(down))
        return JSONResponse({"error": "not_ready", "detail": detail, "down": down,
                             "checks": status}, status_code=503)
    return JSONResponse({"status": "ok", "checks": status})


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(db: DbDep) -> Response:
    """Prometheus text. Escalation and outbox figures come from the database, so every
    API process reports the same."""
    try:
        async with db.session() as s:
            levels = (await s.execute(select(col(Alert.level), func.count())
                                      .group_by(col(Alert.level)))).all()
            open_alerts = (await s.execute(select(func.count()).select_from(Alert).where(
                col(Alert.resolved_at).is_(None)))).scalar_one()
            pending = (await s.execute(select(func.count()).select_from(Outbox).where(
                col(Outbox.started_at).is_(None)))).scalar_one()
        for level, count in levels:
            ESCALATIONS.labels(str(level)).set(count)
        OPEN_ALERTS.set(open_alerts)
        OUTBOX_PENDING.set(pending)
    except Exception:  # noqa: BLE001 - metrics still answer without the database
        pass
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
