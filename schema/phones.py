"""Reporters' phone numbers, read with Google's libphonenumber (`phonenumbers`, region VN).

A valid number in any common form (`+84 0912345678`, `+84 (0) 912 345 678`, `0084912345678`,
`0912 345 678`, `912345678`, `028 3829 1234`, a foreign `+1 650 253 0000`) is stored in one
form, E.164 (`+84912345678`), and shown in the national form (`0912 345 678`; a foreign
number in the international form).

A phone is optional and an emergency report is never refused for it: a text that is not a
valid number is stored as typed (cleaned, see schema.text). The stored value itself is the
flag: `view()` of anything that is not a valid E.164 number says `valid=False`, so the
operator sees the raw text marked "not verified" and can still read it out.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from schema.text import clean_line

REGION = "VN"


def parse(raw: str | None) -> phonenumbers.PhoneNumber | None:
    """The number in `raw`, or None when it is empty, unreadable or not a valid number."""
    text = clean_line(raw or "")
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, REGION)
    except NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def normalise(raw: str) -> str:
    """E.164 (`+84912345678`) for a valid number, else the cleaned text as typed (never
    raises: an unreadable phone must not block a report)."""
    number = parse(raw)
    if number is None:
        return clean_line(raw)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


@dataclass(frozen=True)
class PhoneView:
    """How a stored phone is shown: `display` (national form for VN, international for a
    foreign number, the raw text when invalid), `e164` (None when invalid), `valid`."""

    display: str
    e164: str | None
    valid: bool

    @property
    def tel_uri(self) -> str | None:
        """`tel:+84912345678` for a call link, None when the number is not valid."""
        return f"tel:{self.e164}" if self.e164 else None


def view(stored: str | None) -> PhoneView | None:
    """The display form of a stored phone (E.164, an old `0912345678`, or raw text)."""
    if not stored:
        return None
    number = parse(stored)
    if number is None:
        return PhoneView(display=stored, e164=None, valid=False)
    fmt = (PhoneNumberFormat.NATIONAL
           if phonenumbers.region_code_for_number(number) == REGION
           else PhoneNumberFormat.INTERNATIONAL)
    return PhoneView(display=phonenumbers.format_number(number, fmt),
                     e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
                     valid=True)
