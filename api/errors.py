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


def request_lang(request: Request) -> str:
    """'en' when the caller prefers English (api.lang.negotiate), else 'vi'."""
    return negotiate(request)[0]


class ApiError(Exception):
    """An error answer with a stable code and a message in both languages."""

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


def not_found(what_vi: str = "Không tìm thấy", what_en: str = "Not found") -> ApiError:
    return ApiError(404, "not_found", what_vi, what_en)


class FieldError(ApiError):
    """A 422 for one field that pydantic could not check (unknown attachment id, ...).
    Keeps `field` and both messages for pages that show them next to the field."""

    def __init__(self, field: str, message_vi: str, message_en: str) -> None:
        super().__init__(422, "validation_error", "Dữ liệu không hợp lệ", "Invalid input",
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
        super().__init__(503, "database_unavailable",
                         "Hệ thống tạm thời không truy cập được dữ liệu, vui lòng thử lại sau "
                         "ít giây",
                         "The database is unreachable for now, try again in a few seconds",
                         headers=retry_after(retry_s))


class Overloaded(ApiError):
    """503 `overloaded` with Retry-After: every database connection of this process stayed
    busy (core.db.overloaded); nothing was changed by this request. Load is shed: the
    database is not taken for unreachable."""

    def __init__(self, retry_s: float = 5.0,
                 vi: str = "Hệ thống đang quá tải, vui lòng thử lại sau ít giây",
                 en: str = "The service is overloaded, try again in a few seconds") -> None:
        super().__init__(503, "overloaded", vi, en, headers=retry_after(retry_s))


class ReportOverloaded(Overloaded):
    """503 `overloaded` for a report: too busy to take it now; nothing was stored, the
    client keeps the report and sends it again with the same report_id."""

    def __init__(self, retry_s: float = 5.0) -> None:
        super().__init__(retry_s,
                         "Hệ thống đang quá tải nên chưa nhận được tin báo. Tin báo vẫn được "
                         "giữ trên máy của bạn và sẽ được gửi lại tự động",
                         "The service is overloaded and has not received the report. It "
                         "stays on your device and is sent again by itself")


class ReportMaybeReceived(ApiError):
    """503 `database_unavailable` with Retry-After, for a report sent again while the
    database is down when its workflow was started from the database: it was most likely
    received already, but its tracking link is in the database. Sending it again shortly
    (same report_id) answers the first answer."""

    def __init__(self, retry_s: float = 5.0) -> None:
        super().__init__(503, "database_unavailable",
                         "Tin báo này có thể đã được nhận. Hệ thống tạm thời không truy cập "
                         "được dữ liệu; vui lòng gửi lại sau ít giây để nhận đường dẫn theo "
                         "dõi",
                         "This report may already have been received. The database is "
                         "unreachable for now; send it again in a few seconds to get its "
                         "tracking link",
                         headers=retry_after(retry_s))


class StoresUnavailable(ApiError):
    """503 with Retry-After: neither the database nor the workflow service can take a
    report now; nothing was stored, the client keeps the report and sends it again."""

    def __init__(self, retry_s: float = 5.0) -> None:
        super().__init__(503, "unavailable",
                         "Hệ thống tạm thời chưa nhận được tin báo. Tin báo vẫn được giữ "
                         "trên máy của bạn và sẽ được gửi lại tự động",
                         "The report cannot be received right now. It stays on your device "
                         "and is sent again by itself",
                         headers=retry_after(retry_s))


# Vietnamese for every pydantic error type (pydantic_core's ErrorType; the test
# tests/api/test_wording.py fails when a pydantic upgrade adds one that is missing here).
# `{name}` takes the error's context (ctx) value, as pydantic's English messages do.
_ISO_VI = "Thời gian không hợp lệ (dạng ISO 8601, ví dụ 2026-01-31T08:00:00+07:00)"
PYDANTIC_VI: dict[str, str] = {
    "no_such_attribute": "Trường không được hỗ trợ",
    "json_invalid": "JSON không hợp lệ",
    "json_type": "Phải là chuỗi JSON",
    "needs_python_object": "Giá trị không hợp lệ",
    "recursion_loop": "Dữ liệu lồng nhau vòng tròn",
    "recursion_depth_exceeded": "Dữ liệu lồng nhau quá sâu",
    "missing": "Thiếu trường bắt buộc",
    "frozen_field": "Trường này không được thay đổi",
    "frozen_instance": "Đối tượng này không được thay đổi",
    "extra_forbidden": "Trường không được hỗ trợ",
    "invalid_key": "Khóa phải là chuỗi ký tự",
    "get_attribute_error": "Không đọc được thuộc tính",
    "model_type": "Phải là một đối tượng JSON",
    "model_attributes_type": "Phải là một đối tượng JSON ({{...}})",
    "dataclass_type": "Phải là một đối tượng JSON",
    "dataclass_exact_type": "Phải là một đối tượng JSON",
    "named_tuple_type": "Phải là một danh sách",
    "default_factory_not_called": "Giá trị không hợp lệ",
    "none_required": "Phải để trống (null)",
    "greater_than": "Phải lớn hơn {gt}",
    "greater_than_equal": "Phải lớn hơn hoặc bằng {ge}",
    "less_than": "Phải nhỏ hơn {lt}",
    "less_than_equal": "Phải nhỏ hơn hoặc bằng {le}",
    "multiple_of": "Phải là bội số của {multiple_of}",
    "finite_number": "Phải là một số hữu hạn",
    "too_short": "Danh sách quá ngắn: cần ít nhất {min_length} phần tử",
    "too_long": "Danh sách quá dài: tối đa {max_length} phần tử",
    "iterable_type": "Phải là một danh sách",
    "iteration_error": "Không đọc được danh sách",
    "string_type": "Phải là chuỗi ký tự",
    "string_unicode": "Phải là chuỗi Unicode hợp lệ",
    "string_too_short": "Quá ngắn: cần ít nhất {min_length} ký tự",
    "string_too_long": "Quá dài: tối đa {max_length} ký tự",
    "string_pattern_mismatch": "Định dạng không hợp lệ",
    "string_not_ascii": "Chỉ được dùng ký tự ASCII",
    "enum": "Giá trị không nằm trong danh sách cho phép: {expected}",
    "dict_type": "Phải là một đối tượng JSON",
    "frozen_dict_type": "Phải là một đối tượng JSON",
    "ordered_dict_type": "Phải là một đối tượng JSON",
    "counter_type": "Phải là một đối tượng JSON",
    "mapping_type": "Phải là một đối tượng JSON",
    "list_type": "Phải là một danh sách",
    "deque_type": "Phải là một danh sách",
    "tuple_type": "Phải là một danh sách",
    "set_type": "Phải là một danh sách",
    "set_item_not_hashable": "Phần tử không hợp lệ trong danh sách",
    "bool_type": "Phải là true hoặc false",
    "bool_parsing": "Phải là true hoặc false",
    "int_type": "Phải là số nguyên",
    "int_parsing": "Phải là số nguyên",
    "int_parsing_size": "Số quá lớn",
    "int_from_float": "Phải là số nguyên (không có phần thập phân)",
    "float_type": "Phải là một số",
    "float_parsing": "Phải là một số",
    "bytes_type": "Phải là dữ liệu nhị phân",
    "bytes_too_short": "Quá ngắn: cần ít nhất {min_length} byte",
    "bytes_too_long": "Quá dài: tối đa {max_length} byte",
    "bytes_invalid_encoding": "Mã hóa dữ liệu không hợp lệ",
    "value_error": "Giá trị không hợp lệ",
    "assertion_error": "Giá trị không hợp lệ",
    "literal_error": "Giá trị không nằm trong danh sách cho phép: {expected}",
    "missing_sentinel_error": "Giá trị không hợp lệ",
    "ellipsis_error": "Giá trị không hợp lệ",
    "date_type": "Ngày không hợp lệ",
    "date_parsing": "Ngày không hợp lệ (dạng YYYY-MM-DD)",
    "date_from_datetime_parsing": "Ngày không hợp lệ (dạng YYYY-MM-DD)",
    "date_from_datetime_inexact": "Chỉ được ghi ngày, không kèm giờ",
    "date_past": "Phải là một ngày trong quá khứ",
    "date_future": "Phải là một ngày trong tương lai",
    "time_type": "Giờ không hợp lệ",
    "time_parsing": "Giờ không hợp lệ (dạng HH:MM:SS)",
    "datetime_type": "Thời gian không hợp lệ",
    "datetime_parsing": _ISO_VI,
    "datetime_object_invalid": "Thời gian không hợp lệ",
    "datetime_from_date_parsing": _ISO_VI,
    "datetime_past": "Phải là một thời điểm trong quá khứ",
    "datetime_future": "Phải là một thời điểm trong tương lai",
    "timezone_naive": "Thời gian không được kèm múi giờ",
    "timezone_aware": "Thời gian phải kèm múi giờ",
    "timezone_offset": "Múi giờ không đúng",
    "time_delta_type": "Khoảng thời gian không hợp lệ",
    "time_delta_parsing": "Khoảng thời gian không hợp lệ",
    "frozen_set_type": "Phải là một danh sách",
    "is_instance_of": "Giá trị không đúng kiểu",
    "is_subclass_of": "Giá trị không đúng kiểu",
    "callable_type": "Giá trị không đúng kiểu",
    "union_tag_invalid": "Loại không hợp lệ",
    "union_tag_not_found": "Thiếu trường xác định loại",
    "arguments_type": "Tham số không hợp lệ",
    "missing_argument": "Thiếu tham số bắt buộc",
    "unexpected_keyword_argument": "Tham số không được hỗ trợ",
    "missing_keyword_only_argument": "Thiếu tham số bắt buộc",
    "unexpected_positional_argument": "Tham số không được hỗ trợ",
    "missing_positional_only_argument": "Thiếu tham số bắt buộc",
    "multiple_argument_values": "Tham số được đưa nhiều lần",
    "url_type": "Địa chỉ URL không hợp lệ",
    "url_parsing": "Địa chỉ URL không hợp lệ",
    "url_syntax_violation": "Địa chỉ URL không hợp lệ",
    "url_too_long": "Địa chỉ URL quá dài: tối đa {max_length} ký tự",
    "url_scheme": "Địa chỉ URL phải bắt đầu bằng {expected_schemes}",
    "uuid_type": "Mã định danh (UUID) không hợp lệ",
    "uuid_parsing": "Mã định danh (UUID) không hợp lệ",
    "uuid_version": "Mã định danh (UUID) phải là phiên bản {expected_version}",
    "decimal_type": "Phải là một số thập phân",
    "decimal_parsing": "Phải là một số thập phân",
    "decimal_max_digits": "Tối đa {max_digits} chữ số",
    "decimal_max_places": "Tối đa {decimal_places} chữ số sau dấu phẩy",
    "decimal_whole_digits": "Tối đa {whole_digits} chữ số trước dấu phẩy",
    "fraction_type": "Phải là một phân số",
    "fraction_parsing": "Phải là một phân số",
    "complex_type": "Phải là một số phức",
    "complex_str_parsing": "Phải là một số phức",
}
GENERIC_VI = "Giá trị không hợp lệ"


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
