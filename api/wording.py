"""Human words for actions, states and roles in error messages (Vietnamese and English).

The workflow refuses an update with raw tokens (`'verify' ... 'routed'`) and puts the
action and state in the error details; the API words the answer from those, so a staff
member reads "Không thể thực hiện “Xác minh”: vụ việc đang ở trạng thái “Đã chuyển xử lý”".
The labels are the catalogue's (schema/labels.py), the ones the staff console shows on
its buttons and state badges.
"""

from __future__ import annotations

from schema.labels import ACTION_LABELS, ROLE_LABELS, STATE_LABELS
from schema.states import ACTION_ROLES, Action, Role, State, role_may, steps


def wait_words(seconds: int, unit: str = "second") -> tuple[str, str]:
    """(vi, en) for a wait of `seconds` (or minutes with unit="minute"): "1 giây" /
    "1 second", "5 giây" / "5 seconds" — every Retry-After text is worded here."""
    vi = {"second": "giây", "minute": "phút"}[unit]
    return f"{seconds} {vi}", f"{seconds} {unit}" + ("" if seconds == 1 else "s")


def _role(role: Role) -> tuple[str, str]:
    vi, en = ROLE_LABELS[role]
    return vi.lower(), en.lower()


def not_in_state(action: Action, state: State) -> tuple[str, str]:
    """The action does not apply in this state (whoever asks)."""
    (act_vi, act_en), (st_vi, st_en) = ACTION_LABELS[action], STATE_LABELS[state]
    return (f"Không thể thực hiện “{act_vi}”: vụ việc đang ở trạng thái “{st_vi}”",
            f"Cannot “{act_en}”: the incident is in state “{st_en}”")


def role_not_now(action: Action, state: State, role: Role) -> tuple[str, str]:
    """The role may take the action, but not in this state."""
    (act_vi, act_en), (st_vi, st_en) = ACTION_LABELS[action], STATE_LABELS[state]
    role_vi, role_en = _role(role)
    return (f"Vai trò {role_vi} không thể thực hiện “{act_vi}” khi vụ việc "
            f"đang ở trạng thái “{st_vi}”",
            f"The {role_en} role cannot “{act_en}” while the incident is in state “{st_en}”")


def role_never(action: Action, role: Role) -> tuple[str, str]:
    """The role may not take the action at all."""
    act_vi, act_en = ACTION_LABELS[action]
    role_vi, role_en = _role(role)
    return (f"Vai trò {role_vi} không được phép thực hiện “{act_vi}”",
            f"The {role_en} role may not “{act_en}”")


def refusal(kind: str | None, action: object, state: object,
            role: Role | str | None = None) -> tuple[str, str] | None:
    """(vi, en) for a workflow refusal of `kind` with the action and state from its
    details, or None when these do not explain it (the workflow's own words then)."""
    try:
        act, st = Action(str(action)), State(str(state))
        who = Role(str(role)) if role is not None else None
    except ValueError:
        return None
    if kind == "IllegalTransition":
        if steps(act, st) is None:
            return not_in_state(act, st)
        if who is not None and not role_may(act, who, st):
            return role_not_now(act, st, who)
    elif kind == "Forbidden" and who is not None and who not in ACTION_ROLES[act]:
        return role_never(act, who)
    return None
