"""The one gateway to running incident workflows: every query and update, each with a
timeout, and one mapping from Temporal failures to HTTP errors by the failure's type
(starting a workflow is the outbox relay's: core/outbox.py).

- A refused update (WorkflowUpdateFailedError whose cause is an ApplicationError) maps by
  `ApplicationError.type`: "Forbidden" → 403, "Invalid" → 422, "Stale" (If-Match named an
  older version) → 412, "NoChange" and "IllegalTransition" (and any other refusal) → 409
  (`CaseRefused`); Stale and NoChange name the last change, by whom and when.
- An update the server could not take yet (the run ended in continue-as-new before
  accepting it, or too many updates in flight) is sent again with the same update id.
- An RPC NOT_FOUND means the workflow has ended or never existed: the gateway asks
  (describe) which, and raises `CaseEnded` (409) or `CaseNotFound` (404).
- Temporal unreachable (nothing sent) → `CaseUnavailable` (503). An update sent that got no
  answer in time (RPC deadline, no worker polling, another RPC status) →
  `OutcomeUnknown` (503, Retry-After, "try again with the same Idempotency-Key").

Callers never look at error messages. After an update they rebuild the answer from the
read model (the workflow writes it before the update returns); the update's own result is
passed back untyped unless the caller names `result_type`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from api import wording
from api.errors import ApiError
from api.metrics import ACTIONS
from core.temporal import TemporalHolder, TemporalUnavailable
from schema import words
from schema.ids import workflow_id
from schema.payloads import ActionInput, IncidentState
from schema.rules import Refusal

log = structlog.get_logger(__name__)

CASE_QUERY = "case"
RPC_TIMEOUT = timedelta(seconds=5)
CALL_TIMEOUT_S = 8.0
UPDATE_TIMEOUT_S = CALL_TIMEOUT_S * 2
RETRIES = 8
RETRY_STATUSES = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED)

# What the `case` query answers: the workflow's compact state (no texts, no timeline).
LiveCase = IncidentState


class CaseUnavailable(ApiError):
    """503: the workflow service cannot be reached or did not answer in time.
    `reached` is False when no connection could be made at all."""

    def __init__(self, reason: str = "", reached: bool = True) -> None:
        super().__init__(503, "temporal_unavailable", *words.both("error.temporal_unavailable"),
                         headers={"Retry-After": "5"})
        self.reason = reason
        self.reached = reached


class OutcomeUnknown(CaseUnavailable):
    """503 with Retry-After: the update was sent but no answer came in time (RPC deadline,
    update wait timeout, no worker took the workflow task): it may or may not be applied.
    Sent again with the same Idempotency-Key, it is applied at most once and answers
    with its real outcome (Temporal's update-id dedupe; api/services/actions.py keeps
    the answer past the workflow's end)."""

    RETRY_AFTER_S = 3

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.error = "outcome_unknown"
        self.vi, self.en = words.both("error.outcome_unknown")
        self.headers = {"Retry-After": str(self.RETRY_AFTER_S)}


class CaseNotFound(ApiError):
    """404: no workflow for this incident."""

    def __init__(self) -> None:
        super().__init__(404, "not_found", *words.both("error.not_found.incident"))


class CaseEnded(ApiError):
    """409: the workflow has finished and takes no more updates."""

    def __init__(self) -> None:
        super().__init__(409, "illegal_transition", *words.both("error.illegal_transition.ended"))


class CaseRefused(ApiError):
    """The workflow's validator or handler refused the update. `kind` is the
    ApplicationError type (None when the failure was not an application error). An
    Invalid refusal whose details name a `field` lists it in `fields` with both messages,
    as every other 422 of one field does."""

    STATUS = {"Forbidden": (403, "forbidden"), "Invalid": (422, "validation_error"),
              "Stale": (412, "stale"), "NoChange": (409, "no_change")}

    def __init__(self, kind: str | None, vi: str, en: str,
                 details: dict[str, Any] | None = None) -> None:
        status, code = self.STATUS.get(kind or "", (409, "illegal_transition"))
        field = (details or {}).get("field")
        fields = None if status != 422 else (
            [{"field": str(field), "message": vi, "message_en": en}] if field else [])
        super().__init__(status, code, vi, en, fields=fields)
        self.kind = kind
        self.details = details or {}


def _application_cause(exc: BaseException) -> ApplicationError | None:
    cause: BaseException | None = exc.cause if isinstance(exc, WorkflowUpdateFailedError) \
        else exc
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause if isinstance(cause, FailureError) else None
    return cause


def refusal(exc: WorkflowUpdateFailedError) -> CaseRefused:
    """The workflow's refusal in both languages, worded from its code and details
    (api/wording.py); Stale and NoChange keep changed_by, changed_at and version in the
    answer. A failure without a code (not one of our refusals) keeps its own message."""
    cause = _application_cause(exc)
    if cause is None:
        return CaseRefused(None, str(exc), str(exc))
    details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) \
        else {}
    code = details.get("code") or {"Stale": "stale", "NoChange": "no_change"}.get(
        cause.type or "")
    if code is not None:
        refused = CaseRefused(cause.type, *wording.refusal_words(str(code), details), details)
        if cause.type in ("Stale", "NoChange"):
            refused.extra.update({k: details[k] for k in ("changed_by", "changed_at", "version")
                                  if details.get(k) is not None})
        return refused
    vi, _, en = cause.message.partition(" / ")
    en = str(details.get("message_en") or en)
    return CaseRefused(cause.type, vi or cause.message, en or vi or cause.message, details)


def refusal_error(refusal: Refusal) -> ApiError:
    """A rule of schema/rules.py checked by the API itself, answered exactly as the
    workflow's refusal of the same rule is (`refusal`): an Invalid one that names a field
    is that field's 422."""
    vi, en = wording.refusal_words(refusal.code, refusal.details)
    return CaseRefused(refusal.kind, vi, en, refusal.details)


@contextmanager
def checking() -> Iterator[None]:
    """Around a rule the API checks from what it knows (its read model, the caller):
    a refusal is answered by `refusal_error`."""
    try:
        yield
    except Refusal as refusal:
        raise refusal_error(refusal) from None


async def send_update(handle: Any, update: Any, arg: Any, *, update_id: str | None = None,
                      result_type: type | None = None,
                      rpc_timeout: timedelta | None = None) -> Any:
    """Run `update` on `handle`, sent again (same update id) while the server answers that
    it could not take it yet: UNAVAILABLE when the run it reached ended in continue-as-new
    before accepting it (the next run takes it), RESOURCE_EXHAUSTED when the workflow
    already has the server's maximum of updates in flight (10 by default). At most RETRIES
    sends, 50 ms apart doubling to 1 s; the caller's timeout bounds the whole."""
    for attempt in range(RETRIES):
        try:
            return await handle.execute_update(update, arg, id=update_id,
                                               result_type=result_type,
                                               rpc_timeout=rpc_timeout)
        except RPCError as exc:
            if exc.status not in RETRY_STATUSES or attempt == RETRIES - 1:
                raise
            await asyncio.sleep(min(0.05 * 2 ** attempt, 1.0))
    raise AssertionError("unreachable")


class Cases:
    """Calls on incident workflows through one TemporalHolder."""

    def __init__(self, holder: TemporalHolder) -> None:
        self.holder = holder

    async def _client(self) -> Client:
        try:
            return await self.holder.get()
        except TemporalUnavailable as exc:
            raise CaseUnavailable(str(exc), reached=False) from exc

    async def query(self, incident_id: str, result_type: type = LiveCase) -> Any:
        """The live case, or None when the workflow cannot answer now."""
        try:
            client = await self.holder.get()
            handle = client.get_workflow_handle(workflow_id(incident_id))
            return await asyncio.wait_for(
                handle.query(CASE_QUERY, result_type=result_type, rpc_timeout=RPC_TIMEOUT),
                CALL_TIMEOUT_S)
        except (TemporalUnavailable, RPCError, WorkflowQueryFailedError,
                WorkflowQueryRejectedError, TimeoutError) as exc:
            log.info("case query failed", incident_id=incident_id, error=str(exc))
            return None

    async def update(self, incident_id: str, name: str, arg: Any, *,
                     update_id: str | None = None,
                     result_type: type | None = None) -> Any:
        """Run update `name` and wait for its result (untyped unless `result_type`).
        Raises CaseRefused (403/409/412/422), CaseEnded (409), CaseNotFound (404),
        CaseUnavailable (503, not sent) or OutcomeUnknown (503, sent, outcome unknown).
        An ActionInput without `at` gets the time now: its events' time (see
        schema.payloads.ActionInput)."""
        if isinstance(arg, ActionInput) and arg.at is None:
            arg = arg.model_copy(update={"at": datetime.now(UTC)})
        try:
            client = await self._client()
            handle = client.get_workflow_handle(workflow_id(incident_id))
            result = await asyncio.wait_for(
                send_update(handle, name, arg, update_id=update_id, result_type=result_type,
                            rpc_timeout=RPC_TIMEOUT),
                UPDATE_TIMEOUT_S)
        except WorkflowUpdateFailedError as exc:
            ACTIONS.labels(name, "refused").inc()
            raise refusal(exc) from exc
        except CaseUnavailable:  # no connection: the update was never sent
            ACTIONS.labels(name, "unavailable").inc()
            raise
        except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError) as exc:
            ACTIONS.labels(name, "unknown").inc()
            log.warning("update outcome unknown", incident_id=incident_id, update=name,
                        update_id=update_id, error=f"{exc.__class__.__name__}: {exc}")
            raise OutcomeUnknown(str(exc)) from exc
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                ACTIONS.labels(name, "unknown").inc()
                raise OutcomeUnknown(str(exc)) from exc
            ACTIONS.labels(name, "refused").inc()
            raise await self._gone(client, incident_id) from exc
        ACTIONS.labels(name, "ok").inc()
        return result

    async def _gone(self, client: Client, incident_id: str) -> ApiError:
        """Why an update found no running workflow: ended, or never existed."""
        try:
            described = await client.get_workflow_handle(workflow_id(incident_id)).describe(
                rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return CaseNotFound()
            return CaseUnavailable(str(exc))
        if described.status == WorkflowExecutionStatus.RUNNING:
            return CaseUnavailable("workflow is between runs")
        return CaseEnded()
