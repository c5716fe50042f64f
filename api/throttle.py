"""Sign-in throttling with growing delays, never a lock-out for everyone.

Failed sign-ins are rows of `login_attempts` (username, address, at). Two counters are
kept over the last `WINDOW`:

- per (address, username): a stranger guessing one account's password from one address
  slows down only there; the account's owner, signing in from anywhere else, is not
  affected, however many failures the stranger piles up;
- per address: one address guessing many accounts slows down as a whole.

Past a policy's free failures, the next attempt waits `base_s · 2^(failures − free)`
seconds after the latest failure, capped at `cap_s`. An attempt during the wait is refused
with 429 and `Retry-After` before the password is even checked, and is not counted. A
successful sign-in forgets that (address, username)'s failures.

The address is what `api.auth.client_address` gives: the peer, or what a proxy listed in
CANHBAO_FORWARDED_ALLOW_IPS says (see core/serving.py). IPv6 addresses count by their /64
network, which one subscriber typically holds whole (else each of its 2^64 addresses would
start afresh). Counting is in SQL, so every API process sees the same figures.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api import wording
from api.errors import ApiError
from schema import words
from schema.tables import LoginAttempt, utcnow

WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Policy:
    """`free` failures cost nothing; then delays double from `base_s` up to `cap_s`."""

    free: int
    base_s: float
    cap_s: float

    def delay_s(self, failures: int) -> float:
        """Seconds to wait after the latest of `failures` failures (0 while free)."""
        if failures < self.free:
            return 0.0
        return min(self.cap_s, self.base_s * 2 ** min(failures - self.free, 30))


PAIR = Policy(free=3, base_s=1.0, cap_s=15 * 60)
ADDRESS = Policy(free=30, base_s=1.0, cap_s=15 * 60)


def address_key(address: str) -> str:
    """What failures from `address` are counted under: the address itself, or for IPv6
    its /64 network (an IPv4-mapped IPv6 address counts as the IPv4 one)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


class LoginThrottled(ApiError):
    """429: sign-in attempts come too fast for this account from this address."""

    def __init__(self, seconds: int) -> None:
        if seconds < 120:
            vi, en = wording.wait_words(seconds)
        else:
            vi, en = wording.wait_words(math.ceil(seconds / 60), "minute")
        super().__init__(
            429, "too_many_attempts", words.t("vi", "error.too_many_attempts", wait=vi),
            words.t("en", "error.too_many_attempts", wait=en),
            headers={"Retry-After": str(seconds)},
        )
        self.seconds = seconds


async def _wait_s(session: AsyncSession, policy: Policy, now: datetime, *conds: object) -> float:
    failures, latest = (await session.execute(
        select(func.count(), func.max(col(LoginAttempt.at)))
        .where(col(LoginAttempt.at) >= now - WINDOW, *conds))).one()  # type: ignore[arg-type]
    if not failures or latest is None:
        return 0.0
    return (latest + timedelta(seconds=policy.delay_s(failures)) - now).total_seconds()


async def check(session: AsyncSession, address: str, username: str,
                now: datetime | None = None) -> None:
    """Raise LoginThrottled when this attempt must wait (for the pair or the address)."""
    now = now or utcnow()
    address = address_key(address)
    wait = await _wait_s(session, PAIR, now, col(LoginAttempt.username) == username,
                         col(LoginAttempt.address) == address)
    if address:
        wait = max(wait, await _wait_s(session, ADDRESS, now,
                                       col(LoginAttempt.address) == address))
    if wait > 0:
        raise LoginThrottled(max(1, math.ceil(wait)))


def record_failure(session: AsyncSession, address: str, username: str,
                   now: datetime | None = None) -> None:
    """Count a failed sign-in (the caller commits)."""
    session.add(LoginAttempt(username=username, address=address_key(address),
                             at=now or utcnow()))


async def forget(session: AsyncSession, address: str, username: str) -> None:
    """After a successful sign-in: this address's failures for this username no longer
    count (the caller commits). Failures elsewhere stay."""
    await session.execute(delete(LoginAttempt).where(
        col(LoginAttempt.username) == username,
        col(LoginAttempt.address) == address_key(address)))
    # Rows older than the window never count again.
    await session.execute(delete(LoginAttempt).where(
        col(LoginAttempt.at) < utcnow() - WINDOW))
