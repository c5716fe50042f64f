"""Times that come in from outside (query parameters of statistics, exports, Open311).

A datetime that Python can hold may still overflow once moved to UTC (year 0001 at +14:00,
year 9999 at -12:00) or make no sense for an incident system. `Moment` refuses those with a
422 the caller can act on, instead of an error deep in the database layer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

EARLIEST_YEAR = 1970
LATEST_YEAR = 2200


def _out_of_range() -> PydanticCustomError:
    return PydanticCustomError(
        "time_range", "time out of range: use a year between {low} and {high}",
        {"low": EARLIEST_YEAR, "high": LATEST_YEAR,
         "vi": f"Thời gian ngoài phạm vi: hãy dùng năm từ {EARLIEST_YEAR} đến {LATEST_YEAR}"})


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
