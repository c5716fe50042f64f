"""Incidents with known statistics (api/services/stats.py): six real ones with known
response times and overdue steps, and seven that must be counted apart (three spam, two
other rejections, a merge and a cancellation). All on 4-5 March 2019, Ho Chi Minh City
time, a period no other test dates incidents in (tests/activities/test_search.py keeps
its rejected rows on 1 March 2021, which once doubled these counts in a full run);
`EXPECTED` is what the figures must be."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from core.settings import HCMC_TZ
from schema.tables import Alert, FloodGroup, Incident, ReportFlag

DAY = datetime(2019, 3, 4, tzinfo=HCMC_TZ)  # a Monday
WEB_DAY = datetime(2019, 4, 8, tzinfo=HCMC_TZ)  # the browser test's, also a Monday


def period(day: datetime = DAY) -> tuple[datetime, datetime]:
    """[from, to) of the two days the incidents of `day` were reported on, in UTC."""
    return day.astimezone(UTC), (day + timedelta(days=2)).astimezone(UTC)


FROM, TO = period()
WARD_1, WARD_2 = (26734, "Phường Bến Thành"), (26740, "Phường Sài Gòn")
UNIT_1, UNIT_2 = ("stats-unit-1", "Đội thống kê 1"), ("stats-unit-2", "Đội thống kê 2")

# (name, state, category, ward, unit, local time, ack s, on scene s, close s, overdue in)
_REAL = [
    ("r1", "closed", "crime", WARD_1, UNIT_1, (0, 8, 0), 60, 300, 1800, None),
    ("r2", "closed", "crime", WARD_1, UNIT_1, (0, 9, 0), 120, 600, 3600, "on_scene"),
    ("r3", "closed", "traffic_accident", WARD_2, UNIT_2, (0, 23, 30), 180, 900, 7200, None),
    ("r4", "acknowledged", "traffic_accident", WARD_2, UNIT_2, (0, 10, 0), 240, None, None,
     "routed"),
    ("r5", "routed", "fire_explosion", WARD_1, UNIT_2, (0, 11, 0), None, None, None, "now"),
    # 00:30 on Tuesday in Ho Chi Minh City: still Monday in UTC.
    ("r6", "received", "fire_explosion", WARD_2, None, (1, 0, 30), None, None, None, None),
]
# (name, state, report flag: spam | cleared | flood | None)
_APART = [("s1", "rejected", "spam"), ("s2", "rejected", "spam"), ("s3", "rejected", "flood"),
          ("j1", "rejected", "cleared"), ("j2", "rejected", None), ("m1", "merged", None),
          ("c1", "cancelled", None)]

EXPECTED: dict[str, Any] = {
    "count": 6, "received": 13, "open": 3,
    "set_apart": {"spam": 3, "rejected": 2, "merged": 1, "cancelled": 1},
    "to_acknowledge": {"n": 4, "p50_s": 150.0, "p90_s": 222.0},
    "to_on_scene": {"n": 3, "p50_s": 600.0, "p90_s": 840.0},
    "to_close": {"n": 3, "p50_s": 3600.0, "p90_s": 6480.0},
    "sla_met": 3, "sla_compliance": 0.5,
    "sla": {"acknowledge": (5, 3), "on_scene": (5, 3), "close": (5, 2)},
    "category": {"crime": 2, "traffic_accident": 2, "fire_explosion": 2},
    "ward": {str(WARD_1[0]): 3, str(WARD_2[0]): 3},
    "unit": {None: 1, UNIT_1[0]: 2, UNIT_2[0]: 3},
    "hour": {"0": 1, "8": 1, "9": 1, "10": 1, "11": 1, "23": 1},
    "weekday": {"1": 5, "2": 1},
}


def rows(day: datetime = DAY) -> list[Any]:
    """Fresh rows (new ids) of the incidents above, reported on `day` (a Monday) and the
    day after, their alerts and their report flags."""
    start = day.astimezone(UTC)
    out: list[Any] = []
    flood = FloodGroup(kind="device", key=f"stats-{uuid.uuid4().hex[:8]}", first_at=start,
                       last_at=start, size=1, resolved="rejected", resolved_by="operator1",
                       resolved_at=start)
    out.append(flood)

    def incident(name: str, state: str, category: str, ward: tuple[int, str] | None,
                 unit: tuple[str, str] | None, at: datetime, **kw: Any) -> Incident:
        tag = uuid.uuid4().hex[:8]
        return Incident(id=str(uuid.uuid4()), tracking_code=f"ST{name.upper()}{tag}",
                        state=state, is_open=state not in {"closed", "rejected", "merged",
                                                           "cancelled"},
                        category=category, priority=2, description=f"thống kê {name}",
                        lat=10.77, lon=106.7, ward_code=ward and ward[0],
                        ward_name=ward and ward[1], unit_id=unit and unit[0],
                        unit_name=unit and unit[1], created_at=at, updated_at=at, **kw)

    for name, state, category, ward, unit, (days, h, m), ack, scene, close, late in _REAL:
        at = (day + timedelta(days=days, hours=h, minutes=m)).astimezone(UTC)

        def after(s: int | None, at: datetime = at) -> datetime | None:
            return None if s is None else at + timedelta(seconds=s)
        row = incident(name, state, category, ward, unit, at, acknowledged_at=after(ack),
                       on_scene_at=after(scene), closed_at=after(close),
                       overdue_since=after(600) if late == "now" else None)
        out.append(row)
        if late and late != "now":
            out.append(Alert(incident_id=row.id, tracking_code=row.tracking_code, level=1,
                             state=late, priority=2, category=category,
                             ward_code=ward and ward[0], unit_id=unit and unit[0],
                             overdue_since=at + timedelta(seconds=100),
                             resolved_at=at + timedelta(seconds=200)))
    for n, (name, state, flag) in enumerate(_APART):
        at = (day + timedelta(hours=14, minutes=n)).astimezone(UTC)
        row = incident(name, state, "crime", WARD_1, None, at,
                       closed_at=at + timedelta(seconds=10 + n))
        out.append(row)
        if flag:
            out.append(ReportFlag(
                report_id=row.id, suspected_spam=flag in {"spam", "cleared"},
                flood_group=flood.id if flag == "flood" else None, flagged_at=at,
                cleared_by="operator1" if flag == "cleared" else None,
                cleared_at=at if flag == "cleared" else None))
    return out
