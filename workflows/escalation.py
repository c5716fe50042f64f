"""What the incident workflow does when a deadline passes (part of IncidentWorkflow,
workflows/incident.py): one step of the ladder of schema/escalation.py (`climb`). A new
level is an `escalate` timeline event and an alert raised for its audiences; past the top
level a reminder only updates the existing alert (no event, no new alert row).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.case import IncidentCase

with workflow.unsafe.imports_passed_through():
    from activities import names
    from schema.activity_args import EscalationInput, ReminderInput
    from schema.escalation import climb
    from schema.payloads import SYSTEM_ACTOR
    from schema.states import ESCALATE_EVENT, sla_deadline


class Escalating(IncidentCase):
    """The step the SLA loop of IncidentWorkflow.run takes when the deadline has passed."""

    async def _escalate(self) -> None:
        """The deadline passed: climb one level, or past the top only remind (one step of
        `schema.escalation.climb`)."""
        s = self._s
        assert s.deadline is not None
        now = workflow.now()
        due = s.deadline  # the event's time: when the level was reached (see _moment)
        period = sla_deadline(s.priority, s.state, s.sla_scale, s.sla) or timedelta(minutes=1)
        s.escalation, next_deadline = climb(s.escalation, due, period, now, s.sla_scale,
                                            s.reminders)
        s.deadline = next_deadline
        level, overdue_since = s.escalation.level, s.escalation.overdue_since or due
        common = {"incident_id": s.id, "tracking_code": s.tracking_code, "level": level,
                  "state": s.state, "priority": s.priority, "overdue_since": overdue_since,
                  "ward_code": s.ward.code if s.ward else None,
                  "unit_id": s.unit.id if s.unit else None}
        if s.escalation.reminders == 0:
            event = self._record(ESCALATE_EVENT, SYSTEM_ACTOR, None, None, data={
                "level": level, "state": s.state.value,
                "overdue_since": overdue_since.isoformat(),
                "next_deadline": next_deadline.isoformat(),
            }, at=self._moment(due))
            self._enqueue(names.RAISE_ALERT, EscalationInput(
                **common, category=s.category, seq=event.seq), f"alert level {level}")
            workflow.logger.info("incident %s overdue in %s: level %d", s.id, s.state, level)
        else:
            self._enqueue(names.REMIND_ALERT, ReminderInput(
                **common, reminder=s.escalation.reminders, at=now,
                next_deadline=next_deadline),
                f"reminder {s.escalation.reminders}")
        await self._writes.drain()
