"""Human words for refusals and waits (Vietnamese and English): every refusal code of
schema/rules.py and workflows/ is worded here, from the catalogue's
`refusal.<code>` (schema/words/), and every Retry-After wait from its `wait.*`.

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


def _both(key: str, vi: Mapping[str, object], en: Mapping[str, object]) -> tuple[str, str]:
    """(vi, en) of `key`, each formatted with the parameters in its own language."""
    return words.t("vi", key, **vi), words.t("en", key, **en)


def not_in_state(action: Action, state: State) -> tuple[str, str]:
    """The action does not apply in this state (whoever asks)."""
    (act_vi, act_en), (st_vi, st_en) = ACTION_LABELS[action], STATE_LABELS[state]
    return _both("refusal.not_from_state", {"action": act_vi, "state": st_vi},
                 {"action": act_en, "state": st_en})


def role_not_now(action: Action, state: State, role: Role) -> tuple[str, str]:
    """The role may take the action, but not in this state."""
    (act_vi, act_en), (st_vi, st_en) = ACTION_LABELS[action], STATE_LABELS[state]
    role_vi, role_en = _role(role)
    return _both("refusal.role_not_now", {"action": act_vi, "state": st_vi, "role": role_vi},
                 {"action": act_en, "state": st_en, "role": role_en})


def role_never(action: Action, role: Role) -> tuple[str, str]:
    """The role may not take the action at all."""
    act_vi, act_en = ACTION_LABELS[action]
    role_vi, role_en = _role(role)
    return _both("refusal.role_never", {"action": act_vi, "role": role_vi},
                 {"action": act_en, "role": role_en})


# Codes worded from the action, state or role in their details, or the last change.
NAMED_REFUSALS = frozenset({"not_from_state", "role_not_now", "role_never", "stale",
                            "no_change"})
UNKNOWN_REFUSAL = words.both("refusal.unknown")
# The words of the refusal codes that name nothing of the case (the others are worded by
# `refusal_words` from their details): every other `refusal.<code>` of the catalogue. Some
# English ones begin in lower case: they are what the API has always answered, and tests
# hold them.
REFUSALS: dict[str, tuple[str, str]] = {
    code: words.both(f"refusal.{code}") for code in words.with_prefix("vi", "refusal.")
    if code not in NAMED_REFUSALS | {"unknown"}}


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
    at = d.get("changed_at")
    when = datetime.fromisoformat(at).astimezone(HCMC_TZ).strftime("%H:%M") if at else ""

    def what(lang: str, action: str) -> str:
        parts = [words.t(lang, "changed.action", action=action.lower())]
        parts += [words.t(lang, key, **{name: value}) for key, name, value in (
            ("changed.unit", "unit", d.get("unit_name")),
            ("changed.by", "by", d.get("changed_by")),
            ("changed.at", "at", when)) if value]
        return " ".join(parts)

    key = "refusal.stale" if code == "stale" else "refusal.no_change"
    return _both(key, {"what": what("vi", action_vi)}, {"what": what("en", action_en)})
