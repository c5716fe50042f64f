"""The reporter's live location, shared from the tracking page while the report is open:
what the page sends (`POST /api/v1/track/{token}/location`) and what staff read (in the
incident detail and `GET /api/v1/incidents/{id}/reporter-location`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schema.times import ZonedMoment

# How far ahead of the server's clock a phone's time may be, and how old a position may be.
CLOCK_SKEW_S = 120
MAX_AGE_S = 600
SHARE_INTERVAL_S = 30  # how often the tracking page sends while sharing


class LocationIn(BaseModel):
    """One GPS fix: WGS84 degrees, accuracy radius in metres (95 %), when it was taken
    (`at`, ISO 8601 with its UTC offset; default: when received). A time without an offset,
    ahead by more than CLOCK_SKEW_S or older than MAX_AGE_S is refused (422)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float = Field(ge=0, le=100_000)
    at: ZonedMoment | None = None


class LocationPoint(BaseModel):
    lat: float
    lon: float
    accuracy_m: float
    at: datetime


class ReporterLocationOut(LocationPoint):
    """The latest position, when it reached us, and the trail before it (newest first,
    at most CANHBAO_LOCATION_TRAIL points with the latest)."""

    received_at: datetime
    trail: list[LocationPoint] = Field(default_factory=list)


class LocationAccepted(BaseModel):
    received_at: datetime
    next_in_s: float  # the earliest the next position is taken
    interval_s: int = SHARE_INTERVAL_S
