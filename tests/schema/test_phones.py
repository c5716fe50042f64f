"""schema.phones: every common form of a Vietnamese number is stored as E.164 and shown in
the national form; a text that is not a number is kept as typed and flagged, never refused."""

from __future__ import annotations

import pytest

from schema import phones
from schema.reports import ReporterIn


@pytest.mark.parametrize(("raw", "e164", "shown"), [
    ("+84 0912345678", "+84912345678", "0912 345 678"),
    ("+84 (0) 912 345 678", "+84912345678", "0912 345 678"),
    ("0084912345678", "+84912345678", "0912 345 678"),
    ("0084 0912345678", "+84912345678", "0912 345 678"),
    ("0912 345 678", "+84912345678", "0912 345 678"),
    ("0912.345.678", "+84912345678", "0912 345 678"),
    ("912345678", "+84912345678", "0912 345 678"),
    ("(+84) 912-345-678", "+84912345678", "0912 345 678"),
    ("+84912345678", "+84912345678", "0912 345 678"),
    ("０９１２３４５６７８", "+84912345678", "0912 345 678"),  # full-width digits
    ("0987654321", "+84987654321", "0987 654 321"),
    ("028 3829 1234", "+842838291234", "028 3829 1234"),  # a landline in HCMC
    ("+1 650 253 0000", "+16502530000", "+1 650-253-0000"),  # a foreign tourist
])
def test_valid_numbers_in_any_common_form(raw: str, e164: str, shown: str) -> None:
    assert phones.normalise(raw) == e164
    view = phones.view(phones.normalise(raw))
    assert view is not None and view.valid and view.e164 == e164 and view.display == shown
    assert view.tel_uri == f"tel:{e164}"
    assert ReporterIn(phone=raw).phone == e164


@pytest.mark.parametrize(("raw", "kept"), [
    ("113", "113"),
    ("12345", "12345"),
    ("gọi anh Tư\x00", "gọi anh Tư"),
    ("0912 345 67", "0912 345 67"),  # one digit short
    ("+84 (0) 912 345 678 ext. nhà bên", "+84 (0) 912 345 678 ext. nhà bên"),
])
def test_anything_else_is_kept_as_typed_and_flagged(raw: str, kept: str) -> None:
    stored = ReporterIn(phone=raw).phone
    assert stored == kept
    view = phones.view(stored)
    assert view is not None and not view.valid and view.display == kept
    assert view.e164 is None and view.tel_uri is None


@pytest.mark.parametrize("empty", [None, "", "   ", "\x00"])
def test_no_phone(empty: str | None) -> None:
    assert ReporterIn(phone=empty).phone is None
    assert phones.view(None) is None
