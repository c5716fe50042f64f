"""The one scoping policy: who may see which incidents (and flood groups of reports).

Staff other than officers see every incident. An officer sees only the incidents of the
own unit, and an officer account without a unit sees nothing (never "the incidents
without a unit"). Every list, detail, attachment, alert, event stream, statistic, export
and Open311 call goes through these functions; tests/api/test_scope.py checks every route
that returns incidents against them.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, false, true
from sqlmodel import col

from api.auth import Principal
from schema.states import ACTION_ROLES, Action
from schema.tables import Alert, Attachment, Incident, StaffEvent

_S = TypeVar("_S")


def sees_unit(user: Principal, unit_id: str | None) -> bool:
    """Whether `user` may see an incident handled by `unit_id` (None: not routed yet)."""
    if not user.is_officer:
        return True
    return bool(user.unit_id) and unit_id == user.unit_id


def unit_clause(user: Principal, unit_column: Any) -> ColumnElement[bool]:
    """The SQL form of `sees_unit` over a unit id column."""
    if not user.is_officer:
        return true()
    if not user.unit_id:
        return false()
    return col(unit_column) == user.unit_id


def _limit(stmt: _S, user: Principal, unit_column: Any) -> _S:
    if not user.is_officer:
        return stmt
    return stmt.where(unit_clause(user, unit_column))  # type: ignore[attr-defined]


def incidents(stmt: _S, user: Principal) -> _S:
    """`stmt` (a select over Incident columns) limited to what `user` may see."""
    return _limit(stmt, user, Incident.unit_id)


def alerts(stmt: _S, user: Principal) -> _S:
    """`stmt` (a select over Alert) limited to the alerts of incidents `user` may see."""
    return _limit(stmt, user, Alert.unit_id)


def staff_events(stmt: _S, user: Principal) -> _S:
    """`stmt` (a select over StaffEvent) limited to the events `user` may see."""
    return _limit(stmt, user, StaffEvent.unit_id)


def sees_attachment(user: Principal, attachment: Attachment,
                    incident_unit_id: str | None, has_incident: bool) -> bool:
    """An officer sees the own uploads, and the files of the unit's incidents."""
    if not user.is_officer:
        return True
    if attachment.uploaded_by == user.username:
        return True
    return has_incident and sees_unit(user, incident_unit_id)


def sees_report_groups(user: Principal) -> bool:
    """Flood groups of reports (schema/abuse.py) hold reports nobody has routed yet:
    command-centre staff see them, officers never do."""
    return not user.is_officer


def triages_report_groups(user: Principal) -> bool:
    """Who may reject a whole flood group or declare it not spam: whoever may reject one
    report (schema.states.ACTION_ROLES), since a group rejection is one reject per report."""
    return sees_report_groups(user) and user.role in ACTION_ROLES[Action.REJECT]
