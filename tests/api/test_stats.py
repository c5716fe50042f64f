"""GET /stats's figures (api/services/stats.py) for incidents with known figures: real ones
apart from spam, rejections, merges and cancellations, percentiles, SLA steps, local
hours and days, and the same figures on PostgreSQL and SQLite (SQLite's percentiles are
the window-function fallback)."""

from __future__ import annotations

from typing import Any

import pytest

from api.auth import Principal
from api.services.stats import incident_stats
from core.db import Database
from schema.states import Role
from schema.stats import GroupBy
from tests import stats_seed
from tests.stats_seed import EXPECTED, FROM, TO, UNIT_1

SUPERVISOR = Principal(id="s", username="s", role=Role.SUPERVISOR, unit_id=None,
                       full_name="", sid="", via="bearer")


@pytest.fixture(scope="session")
def seeded() -> set[str]:
    return set()


async def _seed(db: Database, done: set[str]) -> None:
    if db.url in done:  # once per database and session
        return
    async with db.session() as s:
        s.add_all(stats_seed.rows())
        await s.commit()
    done.add(db.url)


def _figures(b: Any) -> dict[str, Any]:
    return {
        "count": b.count, "received": b.received, "open": b.open,
        "set_apart": b.set_apart.model_dump(),
        **{name: getattr(b, name).model_dump()
           for name in ("to_acknowledge", "to_on_scene", "to_close")},
        "sla_met": b.sla_met, "sla_compliance": b.sla_compliance,
        "sla": {step: (s.n, s.met) for step, s in b.sla},
    }


async def test_known_figures(any_db: Database, seeded: set[str]) -> None:
    await _seed(any_db, seeded)
    out = await incident_stats(any_db, SUPERVISOR, FROM, TO, target=0.9)
    assert _figures(out.total) == {k: EXPECTED[k] for k in _figures(out.total)}
    assert out.total.sla.acknowledge.compliance == 0.6
    assert out.total.sla.acknowledge.meets_target is False
    assert out.total.sla.close.target == 0.9
    assert sum(out.total.by_state.values()) == EXPECTED["received"]
    loose = await incident_stats(any_db, SUPERVISOR, FROM, TO, target=0.4)
    assert loose.total.sla.close.meets_target is True  # 2/5 = 0.4: at the target is met
    for group in ("category", "ward", "unit", "hour", "weekday"):
        out = await incident_stats(any_db, SUPERVISOR, FROM, TO, GroupBy(group))
        counts = {g.key: g.count for g in out.groups if g.count}
        assert counts == EXPECTED[group], group
        assert sum(g.received for g in out.groups) == EXPECTED["received"]
    by_hour = await incident_stats(any_db, SUPERVISOR, FROM, TO, GroupBy.HOUR)
    assert [g.label for g in by_hour.groups][:2] == ["00:00", "08:00"]
    by_day = await incident_stats(any_db, SUPERVISOR, FROM, TO, GroupBy.WEEKDAY)
    assert [g.label for g in by_day.groups] == ["Monday", "Tuesday"]
    crime = await incident_stats(any_db, SUPERVISOR, FROM, TO, category="crime")
    assert (crime.total.count, crime.total.set_apart.spam) == (2, 3)


async def test_stats_are_scoped(any_db: Database, seeded: set[str]) -> None:
    await _seed(any_db, seeded)
    officer = Principal(id="o", username="o", role=Role.OFFICER, unit_id=UNIT_1[0],
                        full_name="", sid="", via="bearer")
    out = await incident_stats(any_db, officer, FROM, TO, GroupBy.UNIT)
    assert out.total.count == 2 and [g.key for g in out.groups] == [UNIT_1[0]]
    assert out.total.to_close.model_dump() == {"n": 2, "p50_s": 2700.0, "p90_s": 3420.0}
    no_unit = Principal(id="n", username="n", role=Role.OFFICER, unit_id=None,
                        full_name="", sid="", via="bearer")
    nothing = await incident_stats(any_db, no_unit, FROM, TO, GroupBy.WARD)
    assert (nothing.total.received, nothing.groups) == (0, [])


async def test_postgresql_and_sqlite_agree(pg_db: Database, sqlite_db: Database,
                                           seeded: set[str]) -> None:
    for db in (pg_db, sqlite_db):
        await _seed(db, seeded)
    for group in (None, *GroupBy):
        pg = await incident_stats(pg_db, SUPERVISOR, FROM, TO, group)
        lite = await incident_stats(sqlite_db, SUPERVISOR, FROM, TO, group)
        assert lite.model_dump() == pg.model_dump(), group
