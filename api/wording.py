"""Human words for refusals and waits (Vietnamese and English): the one home of the words
of every refusal code of schema/rules.py and workflows/incident.py.

A rule refuses with a code and details (`schema.rules.Refusal`; the workflow carries them
in its ApplicationError's details); `refusal_words` words them, so a staff member reads
"Không thể thực hiện “Xác minh”: vụ việc đang ở trạng thái “Đã chuyển xử lý”". The
labels are the catalogue's (schema/labels.py), the ones the staff console shows on its
buttons and state badges.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.settings import HCMC_TZ
from schema import words
from schema.labels import ACTION_LABELS, ROLE_LABELS, STATE_LABELS
from schema.states import Action, Role, State


def wait_words(seconds: int, unit: str = "second") -> tuple[str, str]:
    """(vi, en) for a wait of `seconds` (or minutes with unit="minute"): "1 giây" /
    "1 second", "5 giây" / "5 seconds" — every Retry-After text is worded here."""
    one, many = {"second": ("wait.second", "wait.seconds"),
                 "minute": ("wait.minute", "wait.minutes")}[unit]
    return words.both(one if seconds == 1 else many, n=seconds)


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


# The words of the refusal codes that name nothing of the case (the others are worded by
# `refusal_words` from their details). Some English ones begin in lower case: they are
# what the API has always answered, and tests hold them.
REFUSALS: dict[str, tuple[str, str]] = {
    "being_merged": ("Vụ việc đang được gộp, hãy thử lại sau giây lát",
                     "the incident is being merged; try again in a moment"),
    "already_merging": ("Vụ việc đang được gộp, hãy thử lại sau giây lát",
                        "this incident is already being merged; try again in a moment"),
    "merge_held": ("Đang có tin báo được gộp vào vụ việc này, hãy thử lại sau giây lát",
                   "a report is being merged into this incident; try again in a moment"),
    "other_unit": ("Vụ việc không được giao cho đơn vị của bạn",
                   "the incident is not assigned to your unit"),
    "merge_into_itself": ("Không thể gộp vào chính nó", "Cannot merge an incident into itself"),
    "target_closed": ("Vụ việc đích đã kết thúc", "The target incident is no longer open"),
    "target_merged_here": ("Vụ việc đích đã được gộp vào vụ việc này",
                           "the target incident was merged into this one"),
    "has_merged_reports": ("Vụ việc này đã có tin báo khác gộp vào: hãy gộp vụ việc kia vào đây",
                           "other reports were merged into this incident: merge the other "
                           "incident into this one instead"),
    "target_merging_elsewhere": ("Vụ việc đích đang được gộp vào vụ việc khác",
                                 "the target incident is being merged into another one"),
    "target_merging_here": ("Vụ việc đích đang được gộp ngược vào vụ việc này",
                            "the target incident is being merged into this one at the same "
                            "time"),
    "target_refused": ("Vụ việc đích không nhận gộp", "the target incident refused the merge"),
    "target_gone": ("Vụ việc đích không còn mở", "the target incident is not open"),
    "target_silent": ("Vụ việc đích chưa trả lời yêu cầu gộp, hãy thử lại",
                      "the target incident did not answer the merge; try again"),
    "text_required": ("Cần có nội dung hoặc tệp đính kèm", "text or an attachment is required"),
    "no_such_question": ("Không có câu hỏi này để trả lời",
                         "there is no such question to answer"),
}
# Codes worded from the action, state or role in their details, or the last change.
NAMED_REFUSALS = frozenset({"not_from_state", "role_not_now", "role_never", "stale",
                            "no_change"})
UNKNOWN_REFUSAL = ("Không thể thực hiện thao tác này", "The action was refused")


def refusal_words(code: str, details: Mapping[str, Any]) -> tuple[str, str]:
    """(vi, en) for a refusal `code` with its `details` (schema/rules.py)."""
    if code in REFUSALS:
        return REFUSALS[code]
    if code in ("stale", "no_change"):
        return changed_words(code, details)
    try:
        action = Action(str(details.get("action")))
        state = State(str(details["state"])) if "state" in details else None
        role = Role(str(details["role"])) if "role" in details else None
    except ValueError:
        return UNKNOWN_REFUSAL
    if code == "not_from_state" and state is not None:
        return not_in_state(action, state)
    if code == "role_not_now" and state is not None and role is not None:
        return role_not_now(action, state, role)
    if code == "role_never" and role is not None:
        return role_never(action, role)
    return UNKNOWN_REFUSAL


def changed_words(code: str, d: Mapping[str, Any]) -> tuple[str, str]:
    """What changed, by whom and when, for a stale (412) or no_change (409) refusal:
    "đã chuyển xử lý cho Công an Phường Bến Thành bởi operator2 lúc 15:02"."""
    try:
        action_vi, action_en = ACTION_LABELS[Action(d.get("changed_action", ""))]
    except ValueError:
        action_vi = action_en = str(d.get("changed_action") or "")
    unit = d.get("unit_name")
    at = d.get("changed_at")
    when = datetime.fromisoformat(at).astimezone(HCMC_TZ).strftime("%H:%M") if at else ""
    what_vi = f"đã {action_vi.lower()}" + (f" cho {unit}" if unit else "") \
        + (f" bởi {d['changed_by']}" if d.get("changed_by") else "") \
        + (f" lúc {when}" if when else "")
    what_en = f"{action_en.lower()}" + (f" to {unit}" if unit else "") \
        + (f" by {d['changed_by']}" if d.get("changed_by") else "") \
        + (f" at {when}" if when else "")
    if code == "stale":
        return (f"Vụ việc vừa thay đổi ({what_vi}). Hãy xem lại rồi thao tác tiếp.",
                f"The incident has just changed ({what_en}). Look again, then act.")
    return (f"Không có gì thay đổi: vụ việc {what_vi}.",
            f"Nothing to change: the incident was already {what_en}.")
