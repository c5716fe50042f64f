"""The one catalogue of the words for states, actions, categories, outcomes and roles, in
Vietnamese and English. The pages (web/i18n.py builds its `st.*`, `action.*`, `cat.*`,
`outcome.*` and `role.*` messages from it), the API's error wording (api/wording.py),
Open311 service names and CAP events all read it.
"""

from __future__ import annotations

from enum import StrEnum

from schema.abuse import SourceKind
from schema.states import Action, Category, Outcome, Role, State

STATE_LABELS: dict[State, tuple[str, str]] = {
    State.RECEIVED: ("Mới nhận", "New"),
    State.VERIFIED: ("Đã xác minh", "Verified"),
    State.CLASSIFIED: ("Đã phân loại", "Classified"),
    State.ROUTED: ("Đã chuyển xử lý", "Routed"),
    State.ACKNOWLEDGED: ("Đã tiếp nhận", "Acknowledged"),
    State.ON_SCENE: ("Tại hiện trường", "On scene"),
    State.CLOSED: ("Đã kết thúc", "Closed"),
    State.REJECTED: ("Từ chối", "Rejected"),
    State.MERGED: ("Đã gộp", "Merged"),
    State.CANCELLED: ("Người báo đã huỷ", "Cancelled by reporter"),
}
ACTION_LABELS: dict[Action, tuple[str, str]] = {
    Action.VERIFY: ("Xác minh", "Verify"),
    Action.REJECT: ("Từ chối", "Reject"),
    Action.MERGE: ("Gộp vụ việc", "Merge"),
    Action.CLASSIFY: ("Phân loại", "Classify"),
    Action.ROUTE: ("Chuyển xử lý", "Route"),
    Action.ACKNOWLEDGE: ("Tiếp nhận", "Acknowledge"),
    Action.ARRIVE: ("Đã đến hiện trường", "Arrived on scene"),
    Action.NOTE: ("Ghi chú", "Note"),
    Action.MESSAGE: ("Hỏi người báo tin", "Ask the reporter"),
    Action.CLOSE: ("Kết thúc", "Close"),
    Action.REASSIGN: ("Điều chuyển", "Reassign"),
    Action.PUBLISH_ALERT: ("Phát cảnh báo cộng đồng", "Publish public alert"),
    Action.CANCEL: ("Huỷ tin báo", "Cancel report"),
    Action.ADD_INFO: ("Bổ sung thông tin", "Add information"),
}
CATEGORY_LABELS: dict[Category, tuple[str, str]] = {
    Category.CRIME: ("Tội phạm", "Crime"),
    Category.TRAFFIC_ACCIDENT: ("Tai nạn giao thông", "Traffic accident"),
    Category.FIRE_EXPLOSION: ("Cháy nổ", "Fire / explosion"),
    Category.OTHER: ("Sự cố khác", "Other incident"),
}
OUTCOME_LABELS: dict[Outcome, tuple[str, str]] = {
    Outcome.RESOLVED: ("Đã giải quyết", "Resolved"),
    Outcome.FALSE_ALARM: ("Báo tin sai", "False alarm"),
    Outcome.REFERRED: ("Chuyển cơ quan khác", "Referred"),
    Outcome.UNFOUNDED: ("Không có căn cứ", "Unfounded"),
}
ROLE_LABELS: dict[Role, tuple[str, str]] = {
    Role.CITIZEN: ("Người báo tin", "Reporter"),
    Role.OPERATOR: ("Trực ban", "Operator"),
    Role.OFFICER: ("Cán bộ", "Officer"),
    Role.SUPERVISOR: ("Chỉ huy", "Supervisor"),
    Role.ADMIN: ("Quản trị", "Admin"),
    Role.SYSTEM: ("Hệ thống", "System"),
}

# Who a staff message is from, as the reporter reads it: a role or a unit, never a person.
# An officer's message shows the unit's name (recorded with the message); these words are
# for when there is none.
SENDER_LABELS: dict[Role, tuple[str, str]] = {
    Role.OPERATOR: ("Trung tâm chỉ huy", "Command centre"),
    Role.SUPERVISOR: ("Trung tâm chỉ huy", "Command centre"),
    Role.ADMIN: ("Trung tâm chỉ huy", "Command centre"),
    Role.OFFICER: ("Lực lượng công an xử lý", "The police unit on the case"),
}


def sender_label(role: str | None, unit_name: str | None) -> tuple[str, str]:
    """(vi, en) naming the sender of a staff message for the reporter: the unit's name for
    an officer, else the command centre. Never takes a username, so it cannot leak one."""
    if unit_name:
        return unit_name, unit_name
    try:
        return SENDER_LABELS[Role(role or "operator")]
    except (ValueError, KeyError):
        return SENDER_LABELS[Role.OPERATOR]


# Where too many reports came from (schema/abuse.py), as the console says it.
SOURCE_LABELS: dict[SourceKind, tuple[str, str]] = {
    SourceKind.DEVICE: ("cùng một thiết bị", "the same device"),
    SourceKind.PHONE: ("cùng một số điện thoại", "the same phone number"),
    SourceKind.ADDRESS: ("cùng một địa chỉ mạng", "the same network address"),
}

# The message-key prefix of each catalogue in the pages' translations.
PAGE_KEYS: dict[str, dict] = {
    "st": STATE_LABELS, "action": ACTION_LABELS, "cat": CATEGORY_LABELS,
    "outcome": OUTCOME_LABELS, "role": ROLE_LABELS, "source": SOURCE_LABELS,
}


def label(value: StrEnum, lang: str = "vi") -> str:
    """The word for a state, action, category, outcome, role or report source in `lang`
    (vi or en)."""
    for table in PAGE_KEYS.values():
        if value in table and type(value) is type(next(iter(table))):
            vi, en = table[value]
            return en if lang == "en" else vi
    raise KeyError(value)


def page_messages(lang: str) -> dict[str, str]:
    """`st.received`, `action.verify`, `cat.crime`, ... for the pages' translations."""
    index = 1 if lang == "en" else 0
    return {f"{prefix}.{value.value}": words[index]
            for prefix, table in PAGE_KEYS.items() for value, words in table.items()}
