"""The words for states, actions, categories, outcomes, roles, senders and report sources,
in Vietnamese and English, as tables by enum value. The words themselves are in the
catalogues (schema/words.py: `st.*`, `action.*`, `cat.*`, `outcome.*`, `role.*`,
`sender.*`, `source.*`); these tables serve the API's error wording (api/wording.py),
Open311 service names, CAP events and the tracking record.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from schema import words
from schema.abuse import SourceKind
from schema.states import Action, Category, Outcome, Role, State

E = TypeVar("E", bound=StrEnum)


def _table(prefix: str, enum: type[E]) -> dict[E, tuple[str, str]]:
    return {value: words.both(f"{prefix}.{value.value}") for value in enum}


STATE_LABELS = _table("st", State)
ACTION_LABELS = _table("action", Action)
CATEGORY_LABELS = _table("cat", Category)
OUTCOME_LABELS = _table("outcome", Outcome)
ROLE_LABELS = _table("role", Role)

# Who a staff message is from, as the reporter reads it: a role or a unit, never a person.
# An officer's message shows the unit's name (recorded with the message); these words are
# for when there is none.
SENDER_LABELS: dict[Role, tuple[str, str]] = {
    role: words.both(f"sender.{role.value}")
    for role in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, Role.OFFICER)}


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
SOURCE_LABELS = _table("source", SourceKind)

# The catalogue key prefix of each table.
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
