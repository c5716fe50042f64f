"""Who is told when an incident is overdue, and how often after that.

The one escalation policy. An incident that stays in a state past its SLA deadline
(`schema.states.sla_deadline`) climbs a fixed ladder, one level per further SLA period:

| level | who is told                                    | Vietnamese                 |
|-------|------------------------------------------------|----------------------------|
| 1     | supervisors of the unit or ward                | chỉ huy đơn vị / phường    |
| 2     | + city command (TTTTCH duty commander)         | chỉ huy trực ban Công an TP |
| 3     | + the director on duty (top level)             | lãnh đạo trực              |

Past the top level no new level is raised: the workflow only reminds the top level's
audiences at growing intervals (default 15, 30, then every 60 minutes, scaled by
CANHBAO_SLA_SCALE), updating the existing alert (reminder count, last reminded at)
instead of adding timeline events or alert rows. The ladder follows the usual CAD
practice of a bounded escalation chain with periodic re-notification (NENA i3 / APCO
call-handling guidance: escalate to a supervisor, then command, then re-alert).

`climb` is one step of it, as the workflow takes it when a deadline passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from schema import words
from schema.payloads import Escalation

SUPERVISORS = "supervisors"
CITY_COMMAND = "city_command"
DIRECTOR_ON_DUTY = "director_on_duty"

# Level → the audiences told when it is reached (and, at the top, reminded).
ESCALATION_LADDER: dict[int, tuple[str, ...]] = {
    1: (SUPERVISORS,),
    2: (SUPERVISORS, CITY_COMMAND),
    3: (SUPERVISORS, CITY_COMMAND, DIRECTOR_ON_DUTY),
}
TOP_LEVEL = max(ESCALATION_LADDER)

AUDIENCE_LABELS: dict[str, tuple[str, str]] = {
    SUPERVISORS: words.both("audience.supervisors"),
    CITY_COMMAND: words.both("audience.city_command"),
    DIRECTOR_ON_DUTY: words.both("audience.director_on_duty"),
}

# Minutes between reminders once the top level is reached: the n-th reminder (0-based)
# waits REMINDER_MINUTES[min(n, last)]. Overridden by CANHBAO_REMINDERS (seconds).
REMINDER_MINUTES: tuple[float, ...] = (15.0, 30.0, 60.0)


def audiences(level: int) -> tuple[str, ...]:
    """Who is told at `level` (1..TOP_LEVEL); a level past the top tells the top's."""
    if level < 1:
        return ()
    return ESCALATION_LADDER[min(level, TOP_LEVEL)]


def reminder_delay(n: int, scale: float = 1.0,
                   custom_seconds: Sequence[float] | None = None) -> timedelta:
    """How long after the previous notice the n-th reminder (0-based) comes.

    `custom_seconds` (unscaled seconds, from CANHBAO_REMINDERS) replaces the defaults;
    `scale` is CANHBAO_SLA_SCALE fixed for the incident. Never less than one second.
    """
    table = [float(s) for s in custom_seconds] if custom_seconds else \
        [m * 60.0 for m in REMINDER_MINUTES]
    seconds = table[min(max(n, 0), len(table) - 1)] * scale
    return timedelta(seconds=max(seconds, 1.0))


def climb(escalation: Escalation, deadline: datetime, period: timedelta, now: datetime,
          scale: float = 1.0, custom_seconds: Sequence[float] | None = None
          ) -> tuple[Escalation, datetime]:
    """The step taken when `deadline` has passed (`now` is at or after it): the escalation
    that follows `escalation`, and when the next step is due.

    Below the top level: one level up (overdue since the first deadline missed), the
    next level due one SLA `period` later; reaching the top, the first reminder is due
    after `reminder_delay(0)`. At the top: one more reminder, sent `now`, the next after
    `reminder_delay(n)`. Each step is due a wait after the deadline it follows, but never
    in the past: after a long absence the next one is a wait from `now` (no burst).
    """
    overdue_since = escalation.overdue_since or deadline
    if escalation.level < TOP_LEVEL:
        level = escalation.level + 1
        after = Escalation(level=level, overdue_since=overdue_since)
        wait = period if level < TOP_LEVEL else reminder_delay(0, scale, custom_seconds)
    else:
        n = escalation.reminders + 1
        after = escalation.model_copy(update={"reminders": n, "last_reminded_at": now})
        wait = reminder_delay(n, scale, custom_seconds)
    next_deadline = deadline + wait
    if next_deadline <= now:  # the worker was away for long: do not burst
        next_deadline = now + wait
    return after, next_deadline


def check_reminders(seconds: Sequence[float]) -> list[float]:
    """Refuse an empty or non-positive reminder table (CANHBAO_REMINDERS)."""
    values = [float(s) for s in seconds]
    if not values or any(not v > 0 for v in values):
        raise ValueError("CANHBAO_REMINDERS must be a non-empty list of positive seconds, "
                         "e.g. [900, 1800, 3600]")
    return values
