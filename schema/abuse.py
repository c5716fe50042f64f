"""The one policy for reports that come too often from one source (issue #9, item 8).

An anonymous report is **never refused and never dropped** because of these limits: past
one, the report is accepted exactly like any other (202, workflow started, SLA running)
and only *marked* for the operator as suspected spam, with the reason (which source, which
limit, how many). Three sources are counted, each on its own:

- `device`: the random id the citizen page keeps in localStorage (the body's `device_id`;
  Open311's `device_id`). Marked past 5 reports in 10 minutes or 20 in a day; a flood
  group from 3 reports within 60 s.
- `phone`: the reporter's phone, as schema/phones.py normalises it. Marked past 5 in 10
  minutes or 20 in a day; a flood group from 3 within 60 s.
- `address`: the client address (api.auth.client_address: the peer, or the
  X-Forwarded-For of a proxy listed in CANHBAO_FORWARDED_ALLOW_IPS; IPv6 by its /64).
  Marked past 10 in 10 minutes or 100 in a day; a flood group from 5 within 60 s.

Why these figures: a person who saw something reports it once, maybe twice with more
detail, and now and then a second incident the same day; five in ten minutes from one
phone is already unusual. Addresses are shared in Vietnam (carrier-grade NAT puts many
phones of one operator behind one public address, and so do offices and cafés' Wi-Fi), so
an address gets twice the room, and a big event seen by many (a fire) that still lands
many reports on one address only marks them: every report keeps its workflow and its SLA.

A **flood group**: when a source reaches the flood figure (e.g. the 5th report from one
address within 60 s), the reports of that source in that window, and every later one
from it while reports keep coming less than 60 s apart, share one group id. The console
shows an open group as one row that can be rejected in one action (each incident through
its own workflow's reject) or cleared ("not spam").

All figures can be changed through the environment (core/settings.py):
`CANHBAO_REPORT_LIMIT_DEVICE`, `CANHBAO_REPORT_LIMIT_PHONE`, `CANHBAO_REPORT_LIMIT_ADDRESS`
(`"count/seconds,count/seconds"`: more than `count` reports within `seconds` marks the
next ones), `CANHBAO_FLOOD_DEVICE`, `CANHBAO_FLOOD_PHONE`, `CANHBAO_FLOOD_ADDRESS`
(`"count/seconds"`: `count` reports within `seconds` open a group; later ones join
it while each comes less than `seconds` after the group's latest). An empty value turns
that source's marking (or grouping) off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schema.text import Text


class SourceKind(StrEnum):
    DEVICE = "device"
    PHONE = "phone"
    ADDRESS = "address"


@dataclass(frozen=True)
class Rate:
    """`count` reports within `window_s` seconds."""

    count: int
    window_s: int

    def __str__(self) -> str:
        return f"{self.count}/{self.window_s}"


DEFAULT_LIMITS: dict[SourceKind, str] = {
    SourceKind.DEVICE: "5/600,20/86400",
    SourceKind.PHONE: "5/600,20/86400",
    SourceKind.ADDRESS: "10/600,100/86400",
}
DEFAULT_FLOOD: dict[SourceKind, str] = {
    SourceKind.DEVICE: "3/60",
    SourceKind.PHONE: "3/60",
    SourceKind.ADDRESS: "5/60",
}
MAX_DEVICE_ID = 100  # characters of a device id; longer ones are cut


def parse_rates(text: str) -> list[Rate]:
    """`"5/600,20/86400"` → [Rate(5, 600), Rate(20, 86400)]; "" → []. Raises ValueError
    for anything else (counts ≥ 1, windows from 1 s to 30 days)."""
    rates = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        count, sep, window = part.partition("/")
        if not sep or not count.strip().isdigit() or not window.strip().isdigit():
            raise ValueError(f"{part!r}: expected count/seconds, e.g. 5/600")
        rate = Rate(int(count), int(window))
        if rate.count < 1 or not 1 <= rate.window_s <= 30 * 86400:
            raise ValueError(f"{part!r}: count ≥ 1 and 1 ≤ seconds ≤ 2592000")
        rates.append(rate)
    return rates


def parse_flood(text: str) -> Rate | None:
    """`"5/60"` → Rate(5, 60) (at least 2 reports); "" → None (no grouping)."""
    rates = parse_rates(text)
    if not rates:
        return None
    if len(rates) > 1 or rates[0].count < 2:
        raise ValueError(f"{text!r}: one count/seconds with count ≥ 2, e.g. 5/60")
    return rates[0]


@dataclass(frozen=True)
class AbusePolicy:
    """The limits and flood figures per source kind, as the settings give them."""

    limits: dict[SourceKind, list[Rate]]
    flood: dict[SourceKind, Rate | None]

    @classmethod
    def parse(cls, limits: dict[SourceKind, str], flood: dict[SourceKind, str]
              ) -> AbusePolicy:
        """From the settings' texts (ValueError when one does not read)."""
        return cls({k: parse_rates(limits.get(k, "")) for k in SourceKind},
                   {k: parse_flood(flood.get(k, "")) for k in SourceKind})

    @property
    def longest_window_s(self) -> int:
        """How far back counts ever look (older source rows can be purged)."""
        windows = [r.window_s for rates in self.limits.values() for r in rates]
        windows += [r.window_s for r in self.flood.values() if r]
        return max(windows, default=0)


class SpamReason(BaseModel):
    """One limit a report went past: `count` reports from this `source` within
    `window_s` seconds (this one included), more than `limit`."""

    source: SourceKind
    limit: int
    window_s: int
    count: int


# --- flood groups as staff see them (api/services/report_groups.py) -----------------------
class GroupMember(BaseModel):
    """One report of a flood group; `state`/`version` are None until the read model has
    it (a report accepted a moment ago)."""

    incident_id: str
    tracking_code: str
    created_at: datetime
    lat: float
    lon: float
    category: str
    ward_code: int | None = None
    state: str | None = None
    version: int | None = None
    deadline: datetime | None = None
    escalation_level: int = 0
    overdue: bool = False
    suspected_spam: bool = False
    reasons: list[SpamReason] = Field(default_factory=list)


class ReportGroupOut(BaseModel):
    """A flood group: `size` reports from one `source` between `first_at` and `last_at`
    (`span_s` seconds); `pending` of them are still `received` (what a group rejection
    would reject); `devices` distinct device ids among them (many devices behind one
    address can be a real event seen by many); `resolved`: rejected | not_spam | None."""

    id: str
    source: SourceKind
    size: int
    first_at: datetime
    last_at: datetime
    span_s: float
    pending: int
    devices: int
    resolved: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    members: list[GroupMember]


class GroupRejectIn(BaseModel):
    """`reason` is recorded in each incident's timeline. `versions` (incident id → the
    version the operator saw, as the console sends it): a report that is not in it (it
    joined the group after the operator looked) or has moved on is not rejected; without
    it, the read model's current versions are used."""

    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=2000)
    versions: dict[str, int] | None = None


class MemberOutcome(BaseModel):
    """What a group action did to one report: `ok`, else `error` (the API's error code:
    not_pending, not_shown, not_ready, stale, illegal_transition, ...) with `detail`."""

    incident_id: str
    tracking_code: str
    ok: bool
    state: str | None = None
    error: str | None = None
    detail: str | None = None


class GroupRejectResult(BaseModel):
    """Per report: `rejected` ones, and `failed` ones with why (nothing is skipped
    silently); `group` as it is afterwards."""

    group_id: str
    rejected: list[MemberOutcome]
    failed: list[MemberOutcome]
    group: ReportGroupOut
