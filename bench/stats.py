"""Statistics benchmark: `/stats` (api/services/stats.py) over a month and a year of N
incidents, beside a floor measured in the same run.

Creates its own PostgreSQL database (`canhbao_bench_stats`, dropped at the end unless
`--keep`), migrates it, and fills it with COPY: N incidents spread over the past year,
168 wards, 30 units, the four categories, open and closed ones, rejections (a third of
them spam, with their report flags), merges and cancellations, and an escalation alert
for about one real incident in eight. Then it times, R times each, the calls the API and
the supervisor's page make, and prints each p50/p95 beside the floor: a bare
`SELECT category, count(*) … GROUP BY category` over the same period's rows.

    python -m bench.stats                 # 200,000 incidents (a few minutes here)
    python -m bench.stats --million       # 1,000,000
    python -m bench.stats -n 50000 -r 5 --server postgresql+psycopg://postgres@127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import text

from api.auth import Principal
from api.services.stats import breakdown, incident_stats
from core.db import Database
from core.migrate import upgrade
from schema.states import Category, Role
from schema.stats import GroupBy

warnings.filterwarnings("ignore", category=DeprecationWarning)
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
NAME = "canhbao_bench_stats"
SUPERVISOR = Principal(id="bench", username="bench", role=Role.SUPERVISOR, unit_id=None,
                       full_name="", sid="", via="bearer")
WARDS = [(26700 + i, f"Phường {i}") for i in range(168)]
UNITS = [(f"unit-{i:02d}", f"Đơn vị {i}") for i in range(30)]
# (state, weight): mostly closed, some open, the rest ended without being real.
OUTCOMES = [("closed", 70), ("received", 2), ("routed", 2), ("acknowledged", 2),
            ("on_scene", 2), ("rejected", 12), ("merged", 6), ("cancelled", 4)]
COLUMNS = ("id", "tracking_code", "state", "is_open", "category", "priority", "description",
           "search_text", "lat", "lon", "ward_code", "ward_name", "ward_exact",
           "outside_city", "unit_id", "unit_name", "source", "duplicate_count",
           "escalation_level", "created_at", "updated_at", "acknowledged_at", "on_scene_at",
           "closed_at", "last_seq", "version", "silent")
ALERT_COLUMNS = ("id", "incident_id", "tracking_code", "level", "state", "priority",
                 "category", "ward_code", "unit_id", "overdue_since", "created_at",
                 "resolved_at", "reminders")


def _admin(server: str) -> psycopg.Connection:
    return psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True)


def create(server: str) -> str:
    with _admin(server) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {NAME}")
        conn.execute(f"CREATE DATABASE {NAME}")
    url = f"{server}/{NAME}"
    upgrade(url)
    return url


def drop(server: str) -> None:
    with _admin(server) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")


def seed(url: str, n: int, now: datetime) -> None:
    """N incidents over the year before `now`, with COPY."""
    rnd = random.Random(18)
    states, weights = zip(*OUTCOMES, strict=True)
    categories = [c.value for c in Category]
    alerts: list[tuple[Any, ...]] = []
    flags: list[tuple[Any, ...]] = []
    with psycopg.connect(url.replace("+psycopg", "")) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY incidents ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for i in range(n):
                state = rnd.choices(states, weights)[0]
                at = now - timedelta(seconds=rnd.uniform(0, 365 * 86400))
                ward, unit = rnd.choice(WARDS), rnd.choice(UNITS)
                routed = state in {"closed", "routed", "acknowledged", "on_scene"}
                ack = at + timedelta(seconds=rnd.lognormvariate(5, 0.8))
                scene = ack + timedelta(seconds=rnd.lognormvariate(6.5, 0.6))
                end = scene + timedelta(seconds=rnd.lognormvariate(8, 0.7))
                iid = str(uuid.UUID(int=rnd.getrandbits(128)))
                copy.write_row((
                    iid, f"B{i:09d}", state, state not in {"closed", "rejected", "merged",
                                                           "cancelled"},
                    rnd.choice(categories), rnd.randint(1, 4), "bench", "", 10.77, 106.7,
                    ward[0], ward[1], True, False, unit[0] if routed else None,
                    unit[1] if routed else None, "web", 0, 0, at, at,
                    ack if state in {"closed", "acknowledged", "on_scene"} else None,
                    scene if state in {"closed", "on_scene"} else None,
                    end if state == "closed" else at + timedelta(minutes=3)
                    if state in {"rejected", "merged", "cancelled"} else None, 0, 0, False))
                if routed and rnd.random() < 0.125:
                    alerts.append((str(uuid.uuid4()), iid, f"B{i:09d}", 1,
                                   rnd.choice(["routed", "acknowledged", "on_scene"]), 2,
                                   "crime", ward[0], unit[0], at, at, end, 0))
                if state == "rejected" and rnd.random() < 1 / 3:
                    flags.append((iid, True, "[]", at))
        with cur.copy(f"COPY alerts ({', '.join(ALERT_COLUMNS)}) FROM STDIN") as copy:
            for row in alerts:
                copy.write_row(row)
        with cur.copy("COPY report_flags (report_id, suspected_spam, reasons, flagged_at) "
                      "FROM STDIN") as copy:
            for row in flags:
                copy.write_row(row)
        conn.commit()
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    await call()  # warm: plans and caches
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


def q(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(p * 100) - 1]


async def measure(url: str, now: datetime, repeat: int) -> None:
    db = Database(url)
    floor_sql = text("SELECT category, count(*) FROM incidents WHERE created_at >= :f "
                     "AND created_at < :t GROUP BY category")
    print(f"{'call':<44} {'p50 ms':>9} {'p95 ms':>9} {'floor p50':>10} {'× floor':>8}")
    for span, days in (("month", 30), ("year", 365)):
        start = now - timedelta(days=days)

        async def floor(start: datetime = start) -> None:
            async with db.session() as s:
                (await s.execute(floor_sql, {"f": start, "t": now})).all()
        base = await timed(floor, repeat)
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "/stats": lambda start=start: incident_stats(db, SUPERVISOR, start, now),
            "/stats?group_by=category": lambda start=start: incident_stats(
                db, SUPERVISOR, start, now, GroupBy.CATEGORY),
            "/stats?group_by=ward": lambda start=start: incident_stats(
                db, SUPERVISOR, start, now, GroupBy.WARD),
            "supervisor page (total + 4 groupings)": lambda start=start: breakdown(
                db, SUPERVISOR, start, now, (GroupBy.CATEGORY, GroupBy.WARD, GroupBy.HOUR,
                                             GroupBy.WEEKDAY)),
        }
        async with db.session() as s:
            rows = (await s.execute(text("SELECT count(*) FROM incidents WHERE created_at "
                                         ">= :f AND created_at < :t"),
                                    {"f": start, "t": now})).scalar()
        print(f"-- {span}: {rows:,} incidents")
        for name, call in calls.items():
            got = await timed(call, repeat)
            print(f"{name:<44} {q(got, .5) * 1000:>9.1f} {q(got, .95) * 1000:>9.1f} "
                  f"{q(base, .5) * 1000:>10.1f} {q(got, .5) / q(base, .5):>8.1f}")
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200_000, help="incidents (200,000)")
    parser.add_argument("--million", action="store_true", help="1,000,000 incidents")
    parser.add_argument("-r", "--repeat", type=int, default=7, help="timed calls each (7)")
    parser.add_argument("--server", default=SERVER, help=f"PostgreSQL server ({SERVER})")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    args = parser.parse_args()
    n = 1_000_000 if args.million else args.n
    now = datetime.now(UTC)
    url = create(args.server)
    try:
        started = time.perf_counter()
        seed(url, n, now)
        print(f"seeded {n:,} incidents in {time.perf_counter() - started:.0f} s")
        asyncio.run(measure(url, now, args.repeat))
    finally:
        if not args.keep:
            drop(args.server)


if __name__ == "__main__":
    main()
