"""One step of the escalation ladder (schema/escalation.py `climb`), without Temporal: the
level, the reminders and when the next step is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schema.escalation import TOP_LEVEL, climb, reminder_delay
from schema.payloads import Escalation

T0 = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
PERIOD = timedelta(minutes=10)


def test_climbs_one_level_per_period_from_the_first_missed_deadline() -> None:
    first, due = climb(Escalation(), T0, PERIOD, T0 + timedelta(seconds=1))
    assert first == Escalation(level=1, overdue_since=T0)
    assert due == T0 + PERIOD
    second, due2 = climb(first, due, PERIOD, due)
    assert second == Escalation(level=2, overdue_since=T0)
    assert due2 == due + PERIOD


def test_reaching_the_top_waits_for_the_first_reminder() -> None:
    below = Escalation(level=TOP_LEVEL - 1, overdue_since=T0)
    top, due = climb(below, T0, PERIOD, T0, scale=0.5)
    assert top == Escalation(level=TOP_LEVEL, overdue_since=T0)
    assert due == T0 + reminder_delay(0, 0.5)


def test_past_the_top_only_reminds_at_growing_intervals() -> None:
    at_top = Escalation(level=TOP_LEVEL, overdue_since=T0, reminders=1)
    now = T0 + timedelta(seconds=5)
    after, due = climb(at_top, T0, PERIOD, now, custom_seconds=[60, 120, 300])
    assert after == Escalation(level=TOP_LEVEL, overdue_since=T0, reminders=2,
                               last_reminded_at=now)
    assert due == T0 + timedelta(seconds=300)


def test_after_a_long_absence_the_next_step_is_a_wait_from_now() -> None:
    now = T0 + timedelta(hours=5)
    _, due = climb(Escalation(), T0, PERIOD, now)
    assert due == now + PERIOD
