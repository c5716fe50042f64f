"""An incident's intake step (part of IncidentWorkflow, workflows/incident.py): while the
receipt is projected, find the ward, the proposed unit and duplicate suggestions, and
record them as one `locate` event. A look-up that fails is recorded as failed (the
operator then chooses unaided); it never holds the incident up.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.case import IncidentCase

with workflow.unsafe.imports_passed_through():
    from activities import names
    from schema.activity_args import DuplicatesInput, LocateInput, LocateResult
    from schema.payloads import SYSTEM_ACTOR, DuplicateSuggestion
    from schema.states import LOCATE_EVENT

# Ward and duplicate look-ups help the operator but must not hold the incident up.
LOOKUP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
    maximum_attempts=5, non_retryable_error_types=["Invalid"],
)
LOOKUP_TIMEOUT = timedelta(seconds=30)
MAX_DUPLICATES = 10


class Intake(IncidentCase):
    """The `locate` step, run once beside the SLA loop of a new incident's first run."""

    _located: bool  # the step is done (or the run continued one where it was)

    async def _intake(self) -> None:
        """Project the receipt; meanwhile find the ward, the proposed unit and duplicate
        suggestions, and record them as a `locate` event."""
        s = self._s
        loc = s.location
        results: tuple[Any, Any, Any] = await asyncio.gather(
            self._writes.drain(),
            workflow.execute_activity(
                names.LOCATE_WARD, LocateInput(lat=loc.lat, lon=loc.lon),
                result_type=LocateResult, start_to_close_timeout=LOOKUP_TIMEOUT,
                retry_policy=LOOKUP_RETRY, summary="locate ward"),
            workflow.execute_activity(
                names.FIND_DUPLICATES,
                DuplicatesInput(incident_id=s.id, category=s.category,
                                lat=loc.lat, lon=loc.lon, at=s.created_at),
                result_type=list[DuplicateSuggestion], start_to_close_timeout=LOOKUP_TIMEOUT,
                retry_policy=LOOKUP_RETRY, summary="find duplicates"),
            return_exceptions=True,
        )
        _, located, duplicates = results
        data: dict[str, Any] = {}
        if isinstance(located, LocateResult):
            s.ward = located.ward
            s.proposed_unit = located.unit
            if located.ward:
                data.update(ward_code=located.ward.code, ward_name=located.ward.name,
                            exact=located.ward.exact, outside_city=located.ward.outside_city,
                            distance_m=located.ward.distance_m)
            data["proposed_unit_id"] = located.unit.id if located.unit else None
        else:
            workflow.logger.warning("ward lookup failed: %s", located)
            data["ward_error"] = str(located)
        if isinstance(duplicates, list):
            s.duplicates = duplicates[:MAX_DUPLICATES]
            data["duplicates"] = [d.incident_id for d in s.duplicates]
        else:
            workflow.logger.warning("duplicate search failed: %s", duplicates)
            data["duplicates_error"] = str(duplicates)
        self._located = True
        self._record(LOCATE_EVENT, SYSTEM_ACTOR, None, None, data=data, at=self._moment(
            located.at if isinstance(located, LocateResult) else None))
        await self._writes.drain()
