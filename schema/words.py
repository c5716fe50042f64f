"""The words of CanhBao: one catalogue per language, as data in schema/words/<lang>.json.

Every layer reads them from here: the pages (web/i18n.py), the API's errors (api/errors.py
and every raise site: `ApiError(status, code, *words.both(key, **params))`), the refusals
(api/wording.py), the labels of states, actions, categories, outcomes, roles and senders
(schema/labels.py), the tracking notes the workflow records (schema/states.py), the alert
and notice texts (activities/) and the push notifications (schema/push.py). A catalogue is
a flat, sorted map of dotted keys to texts; a text takes str.format-style `{name}`
parameters. Vietnamese is the fallback language.

Keys by prefix: `st.` `action.` `cat.` `outcome.` `role.` `source.` `sender.` (labels),
`note.` (a state's public note), `alert.` (overdue alerts), `error.<code>[.<what>]` (an
API error's detail), `field.<name>.<problem>` (a field's error), `refusal.<code>` and
`changed.` (refusals), `wait.` (Retry-After waits), `open311.` (GeoReport errors),
`group.` (report groups), `audience.` (escalation audiences), `pydantic.` (validation
errors), and the pages' keys (`app.` `report.` `err.` `track.` `story.` `staff.` ...).
Vietnamese only: `pydantic.` (the English is pydantic's own message), `feed.` (the CAP and
Open311 feeds), `push.` (the reporter's notifications), `phrase.` (staff's ready phrases
to the reporter) and `notice.` (staff notices, one text carrying both languages).

The catalogues are read once, at import, so code in the workflow sandbox (which imports
schema passed through) never touches a file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

WORDS_DIR = Path(__file__).with_name("words")
LANGS = ("vi", "en")
FALLBACK = "vi"


class MissingWord(KeyError):
    """A key that no catalogue holds."""

    def __str__(self) -> str:
        return f"no words for {self.args[0]!r} in schema/words/{FALLBACK}.json"


def _load(lang: str) -> Mapping[str, str]:
    with (WORDS_DIR / f"{lang}.json").open(encoding="utf-8") as f:
        return MappingProxyType(json.load(f))


CATALOGUES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {lang: _load(lang) for lang in LANGS})


def t(lang: str, key: str, **params: object) -> str:
    """The text of `key` in `lang` (in Vietnamese when `lang` or its text is missing),
    formatted with `params` when given. Raises MissingWord when no catalogue has `key`."""
    text = CATALOGUES.get(lang, {}).get(key) or CATALOGUES[FALLBACK].get(key)
    if text is None:
        raise MissingWord(key)
    return text.format(**params) if params else text


def both(key: str, **params: object) -> tuple[str, str]:
    """(vi, en) of `key`, as the errors and labels that carry both languages want them."""
    return t("vi", key, **params), t("en", key, **params)


def with_prefix(lang: str, prefix: str) -> dict[str, str]:
    """The texts of `lang` whose key starts with `prefix`, keyed by the rest of the key."""
    return {key[len(prefix):]: text for key, text in CATALOGUES[lang].items()
            if key.startswith(prefix)}
