"""Times that come in from outside (query parameters of statistics, exports, Open311, a
phone's GPS fix).

A datetime that Python can hold may still overflow once moved to UTC (year 0001 at +14:00,
year 9999 at -12:00) or make no sense for an incident system. `Moment` refuses those with a
422 the caller can act on, instead of an error deep in the database layer. `ZonedMoment`
also refuses a time without a UTC offset (the contract: times are ISO 8601 with a time
zone), where reading it as UTC would place it 7 hours off for a phone in Vietnam.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from schema import words

EARLIEST_YEAR = 1970
LATEST_YEAR = 2200


def _out_of_range() -> PydanticCustomError:
    years = {"low": EARLIEST_YEAR, "high": LATEST_YEAR}
    return PydanticCustomError("time_range", words.t("en", "field.time.range"),
                               {**years, "vi": words.t("vi", "field.time.range", **years)})


def sane_moment(value: datetime) -> datetime:
    """`value` as an aware UTC datetime between EARLIEST_YEAR and LATEST_YEAR; a naive
    value is taken as UTC. Raises PydanticCustomError "time_range" (422) otherwise."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        utc = aware.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise _out_of_range() from exc
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise _out_of_range()
    return utc


Moment = Annotated[datetime, AfterValidator(sane_moment)]


ZONE_EXAMPLE = "2026-11-29T10:00:00+07:00"


def zoned_moment(value: datetime) -> datetime:
    """`sane_moment` of a time that carries its UTC offset; without one, PydanticCustomError
    "time_zone" (422)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError(
            "time_zone", words.t("en", "field.time.zone"),
            {"example": ZONE_EXAMPLE,
             "vi": words.t("vi", "field.time.zone", example=ZONE_EXAMPLE)})
    return sane_moment(value)


ZonedMoment = Annotated[datetime, AfterValidator(zoned_moment)]
