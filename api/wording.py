"""Human words for actions, states and roles in error messages (Vietnamese and English).

The workflow refuses an update with raw tokens (`'verify' ... 'routed'`) and puts the
action and state in the error details; the API words the answer from those, so a staff
member reads "Không thể thực hiện “Xác minh”: vụ việc đang ở trạng thái “Đã chuyển xử lý”".
The labels are the ones the staff console shows on its buttons and state badges.
"""

from __future__ import annotations

from schema.states import ACTION_ROLES, Action, Role, State, role_may, steps

ACTION_VI: dict[Action, str] = {
    Action.VERIFY: "Xác minh", Action.REJECT: "Từ chối", Action.MERGE: "Gộp vụ việc",
    Action.CLASSIFY: "Phân loại", Action.ROUTE: "Chuyển xử lý",
    Action.ACKNOWLEDGE: "Tiếp nhận", Action.ARRIVE: "Đã đến hiện trường",
    Action.NOTE: "Ghi chú", Action.CLOSE: "Kết thúc", Action.REASSIGN: "Điều chuyển",
    Action.PUBLISH_ALERT: "Phát cảnh báo cộng đồng", Action.CANCEL: "Huỷ tin báo",
    Action.ADD_INFO: "Bổ sung thông tin",
}
ACTION_EN: dict[Action, str] = {
    Action.VERIFY: "Verify", Action.REJECT: "Reject", Action.MERGE: "Merge",
    Action.CLASSIFY: "Classify", Action.ROUTE: "Route", Action.ACKNOWLEDGE: "Acknowledge",
    Action.ARRIVE: "Arrived on scene", Action.NOTE: "Note", Action.CLOSE: "Close",
    Action.REASSIGN: "Reassign", Action.PUBLISH_ALERT: "Publish public alert",
    Action.CANCEL: "Cancel report", Action.ADD_INFO: "Add information",
}
STATE_VI: dict[State, str] = {
    State.RECEIVED: "Mới nhận", State.VERIFIED: "Đã xác minh",
    State.CLASSIFIED: "Đã phân loại", State.ROUTED: "Đã chuyển xử lý",
    State.ACKNOWLEDGED: "Đã tiếp nhận", State.ON_SCENE: "Tại hiện trường",
    State.CLOSED: "Đã kết thúc", State.REJECTED: "Từ chối", State.MERGED: "Đã gộp",
    State.CANCELLED: "Người báo đã huỷ",
}
STATE_EN: dict[State, str] = {
    State.RECEIVED: "New", State.VERIFIED: "Verified", State.CLASSIFIED: "Classified",
    State.ROUTED: "Routed", State.ACKNOWLEDGED: "Acknowledged", State.ON_SCENE: "On scene",
    State.CLOSED: "Closed", State.REJECTED: "Rejected", State.MERGED: "Merged",
    State.CANCELLED: "Cancelled by reporter",
}
ROLE_VI: dict[Role, str] = {
    Role.CITIZEN: "người báo tin", Role.OPERATOR: "trực ban", Role.OFFICER: "cán bộ",
    Role.SUPERVISOR: "chỉ huy", Role.ADMIN: "quản trị", Role.SYSTEM: "hệ thống",
}
ROLE_EN: dict[Role, str] = {
    Role.CITIZEN: "reporter", Role.OPERATOR: "operator", Role.OFFICER: "officer",
    Role.SUPERVISOR: "supervisor", Role.ADMIN: "administrator", Role.SYSTEM: "system",
}


def not_in_state(action: Action, state: State) -> tuple[str, str]:
    """The action does not apply in this state (whoever asks)."""
    return (f"Không thể thực hiện “{ACTION_VI[action]}”: vụ việc đang ở trạng thái "
            f"“{STATE_VI[state]}”",
            f"Cannot “{ACTION_EN[action]}”: the incident is in state “{STATE_EN[state]}”")


def role_not_now(action: Action, state: State, role: Role) -> tuple[str, str]:
    """The role may take the action, but not in this state."""
    return (f"Vai trò {ROLE_VI[role]} không thể thực hiện “{ACTION_VI[action]}” khi vụ việc "
            f"đang ở trạng thái “{STATE_VI[state]}”",
            f"The {ROLE_EN[role]} role cannot “{ACTION_EN[action]}” while the incident is in "
            f"state “{STATE_EN[state]}”")


def role_never(action: Action, role: Role) -> tuple[str, str]:
    """The role may not take the action at all."""
    return (f"Vai trò {ROLE_VI[role]} không được phép thực hiện “{ACTION_VI[action]}”",
            f"The {ROLE_EN[role]} role may not “{ACTION_EN[action]}”")


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
