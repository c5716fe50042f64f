"""The reporter's live location: positions posted from the tracking page while the report
is open, kept in the read model (the latest CANHBAO_LOCATION_TRAIL per incident, never in
the workflow's history), announced to staff on the live feed (`reporter.location`, scoped
like every staff event by the incident's unit) and shown in the incident's detail.

Rules: WGS84 ranges and accuracy >= 0 (schema.locations.LocationIn); the phone's time with
its UTC offset (schema.times.ZonedMoment), no more than CLOCK_SKEW_S ahead nor MAX_AGE_S old
(422); at most one position per report in
CANHBAO_LOCATION_MIN_INTERVAL_S (429 with Retry-After); none once the report is closed
(409, the page then stops sharing).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api import wording
from api.errors import ApiError, FieldError
from api.infra import Infra
from api.services.tracking import TrackingConflict, report_for
from schema import words
from schema.locations import (
    CLOCK_SKEW_S,
    MAX_AGE_S,
    LocationAccepted,
    LocationIn,
    LocationPoint,
    ReporterLocationOut,
)
from schema.tables import Incident, Report, ReporterLocation, StaffEvent, utcnow

log = structlog.get_logger(__name__)


class LocationTooSoon(ApiError):
    """429: a position came sooner than CANHBAO_LOCATION_MIN_INTERVAL_S after the last."""

    def __init__(self, seconds: int) -> None:
        vi, en = wording.wait_words(seconds)
        super().__init__(429, "too_many_locations",
                         words.t("vi", "error.too_many_locations", wait=vi),
                         words.t("en", "error.too_many_locations", wait=en),
                         headers={"Retry-After": str(seconds)})


def _closed() -> TrackingConflict:
    return TrackingConflict(*words.both("error.conflict.location_closed"))


def _check_time(at: datetime, now: datetime) -> None:
    if at > now + timedelta(seconds=CLOCK_SKEW_S):
        raise FieldError("at", *words.both("field.at.future"))
    if at < now - timedelta(seconds=MAX_AGE_S):
        raise FieldError("at", *words.both("field.at.too_old", minutes=MAX_AGE_S // 60))


async def share_location(infra: Infra, token: str, body: LocationIn) -> LocationAccepted:
    """Keep one position of the reporter of `token`'s report and tell the staff feed.
    404 unknown token, 409 closed, 422 bad time, 429 too soon (see module)."""
    now = utcnow()
    at = body.at or now
    _check_time(at, now)
    report = await report_for(infra, token)
    interval = infra.settings.location_min_interval_s
    async with infra.db.session() as s:
        # One writer per report at a time, so two quick posts cannot both pass the limit.
        await s.execute(select(col(Report.id)).where(col(Report.id) == report.id)
                        .with_for_update())
        row = await s.get(Incident, report.id)
        if row is not None and not row.is_open:
            raise _closed()
        last = (await s.execute(select(func.max(col(ReporterLocation.received_at))).where(
            col(ReporterLocation.incident_id) == report.id))).scalar_one()
        if last is not None and (now - last).total_seconds() < interval:
            raise LocationTooSoon(max(1, math.ceil(interval - (now - last).total_seconds())))
        s.add(ReporterLocation(incident_id=report.id, lat=body.lat, lon=body.lon,
                               accuracy_m=body.accuracy_m, at=at, received_at=now))
        await s.flush()
        keep = select(col(ReporterLocation.id)).where(
            col(ReporterLocation.incident_id) == report.id).order_by(
            col(ReporterLocation.received_at).desc(), col(ReporterLocation.id).desc()
        ).limit(infra.settings.location_trail)
        await s.execute(delete(ReporterLocation).where(
            col(ReporterLocation.incident_id) == report.id,
            col(ReporterLocation.id).not_in(keep.scalar_subquery())))
        s.add(StaffEvent(kind="reporter.location", incident_id=report.id, at=now,
                         unit_id=row.unit_id if row else None,
                         ward_code=row.ward_code if row else None,
                         payload={"tracking_code": report.tracking_code, "lat": body.lat,
                                  "lon": body.lon, "accuracy_m": body.accuracy_m,
                                  "measured_at": at.isoformat(),
                                  "received_at": now.isoformat()}))
        await s.commit()
    return LocationAccepted(received_at=now, next_in_s=interval)


async def reporter_location(s: AsyncSession, incident_id: str) -> ReporterLocationOut | None:
    """The reporter's latest shared position with its trail, or None. The caller has
    checked that the reader may see the incident (api/scope.py)."""
    rows = (await s.execute(select(ReporterLocation).where(
        col(ReporterLocation.incident_id) == incident_id).order_by(
        col(ReporterLocation.received_at).desc(), col(ReporterLocation.id).desc()))
    ).scalars().all()
    if not rows:
        return None
    latest = rows[0]
    return ReporterLocationOut(
        lat=latest.lat, lon=latest.lon, accuracy_m=latest.accuracy_m, at=latest.at,
        received_at=latest.received_at,
        trail=[LocationPoint(lat=r.lat, lon=r.lon, accuracy_m=r.accuracy_m, at=r.at)
               for r in rows])
