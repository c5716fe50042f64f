"""Errors as JSON `{error, detail}` (422 adds `fields`), in Vietnamese or English.

Raise `ApiError` (or one of the domain errors of api.services, which carry both languages)
anywhere in a route; the handlers installed by api.handlers pick the language from
`Accept-Language` (Vietnamese unless the caller prefers English).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request

from api.lang import negotiate
from schema import words


def request_lang(request: Request) -> str:
    """'en' when the caller prefers English (api.lang.negotiate), else 'vi'."""
    return negotiate(request)[0]


class ApiError(Exception):
    """An error answer with a stable code and a message in both languages, read from the
    catalogue where it is raised: `ApiError(409, "moved", *words.both("error.moved"))`."""

    def __init__(self, status: int, error: str, vi: str, en: str | None = None,
                 fields: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(en or vi)
        self.status = status
        self.error = error
        self.vi = vi
        self.en = en or vi
        self.fields = fields
        self.headers = headers
        self.extra = extra

    def body(self, lang: str) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "detail": self.en if lang == "en" else self.vi}
        if self.fields is not None:
            out["fields"] = self.fields
        out.update(self.extra)
        return out


NOT_FOUND = words.both("error.not_found")


def not_found(what_vi: str = NOT_FOUND[0], what_en: str = NOT_FOUND[1]) -> ApiError:
    return ApiError(404, "not_found", what_vi, what_en)


class FieldError(ApiError):
    """A 422 for one field that pydantic could not check (unknown attachment id, ...).
    Keeps `field` and both messages for pages that show them next to the field."""

    def __init__(self, field: str, message_vi: str, message_en: str) -> None:
        super().__init__(422, "validation_error", *words.both("error.validation_error"),
                         fields=[{"field": field, "message": message_vi,
                                  "message_en": message_en}])
        self.field = field
        self.message_vi = message_vi
        self.message_en = message_en


def field_error(field: str, vi: str, en: str) -> FieldError:
    """The one-field 422 (see FieldError)."""
    return FieldError(field, vi, en)


def retry_after(seconds: float) -> dict[str, str]:
    """The Retry-After header for a wait of `seconds` (whole seconds, at least 1)."""
    return {"Retry-After": str(max(1, round(seconds)))}


class DatabaseUnavailable(ApiError):
    """503 with Retry-After: the database cannot be reached now (core.db.unreachable);
    nothing was changed by this request unless the answer says otherwise."""

    def __init__(self, retry_s: float = 5.0) -> None:
        super().__init__(503, "database_unavailable", *words.both("error.database_unavailable"),
                         headers=retry_after(retry_s))


class Overloaded(ApiError):
    """503 `overloaded` with Retry-After: every database connection of this process stayed
    busy (core.db.overloaded); nothing was changed by this request. Load is shed: the
    database is not taken for unreachable."""

    def __init__(self, retry_s: float = 5.0, key: str = "error.overloaded") -> None:
        super().__init__(503, "overloaded", *words.both(key), headers=retry_after(retry_s))


class ReportOverloaded(Overloaded):
    """503 `overloaded` for a report: too busy to take it now; nothing was stored, the
    client keeps the report and sends it again with the same report_id."""

    def __init__(self, retry_s: float = 5.0) -> None:
        super().__init__(retry_s, "error.overloaded.report")


class ReportMaybeReceived(ApiError):
    """503 `database_unavailable` with Retry-After, for a report sent again while the
    database is down when its workflow was started from the database: it was most likely
    received already, but its tracking link is in the database. Sending it again shortly
    (same report_id) answers the first answer."""

    def __init__(self, retry_s: float = 5.0) -> None:
        super().__init__(503, "database_unavailable",
                         *words.both("error.database_unavailable.report"),
                         headers=retry_after(retry_s))


class StoresUnavailable(ApiError):
    """503 with Retry-After: neither the database nor the workflow service can take a
    report now; nothing was stored, the client keeps the report and sends it again."""

    def __init__(self, retry_s: float = 5.0) -> None:
        super().__init__(503, "unavailable", *words.both("error.unavailable.report"),
                         headers=retry_after(retry_s))


# Vietnamese for every pydantic error type (pydantic_core's ErrorType), catalogue keys
# `pydantic.<type>` (the test tests/api/test_validation_wording.py fails when a pydantic
# upgrade adds one that is missing). `{name}` takes the error's context (ctx) value, as
# pydantic's English messages do; `pydantic.generic` words a type without its own.
PYDANTIC_VI: dict[str, str] = words.with_prefix("vi", "pydantic.")
GENERIC_VI = PYDANTIC_VI.pop("generic")


class _Ctx(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "…"


def pydantic_messages(err: Mapping[str, Any]) -> tuple[str, str]:
    """(vi, en) for one pydantic error (an item of `ValidationError.errors()`): the
    Vietnamese from the error's own ctx["vi"] (custom errors, e.g. schema/times.py), else
    from PYDANTIC_VI by its type with ctx filled in, else a generic Vietnamese message —
    never English in the Vietnamese slot. The English is pydantic's message."""
    msg_en = str(err.get("msg") or "Invalid value")
    if msg_en.startswith("Value error, "):
        msg_en = msg_en[len("Value error, "):]
    ctx = err.get("ctx")
    ctx = ctx if isinstance(ctx, dict) else {}
    msg_vi = ctx.get("vi")
    if not isinstance(msg_vi, str) or not msg_vi:
        template = PYDANTIC_VI.get(str(err.get("type")), GENERIC_VI)
        msg_vi = template.format_map(_Ctx({k: _ctx_text(v) for k, v in ctx.items()}))
    return msg_vi, msg_en


def _ctx_text(value: Any) -> str:
    text = str(value)
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    return text[:200]
