"""The Temporal client, the same for the API and the worker, and a lazily connected
holder of it for processes that must keep working while Temporal is down.

The API must accept reports while Temporal is unreachable, so it never connects at start-up
and never waits long: `await holder.get()` returns the client or raises
`TemporalUnavailable` quickly, and tries again on a later call.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from core.settings import Settings
from schema.ids import workflow_id

# workflow_id lives in schema/ids.py; re-exported for older imports (tests/workflows).
__all__ = ["TemporalHolder", "TemporalUnavailable", "connect", "workflow_id"]


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=settings.temporal_tls,
        api_key=settings.temporal_api_key,
    )


log = structlog.get_logger(__name__)


class TemporalUnavailable(RuntimeError):
    """Temporal cannot be reached now."""


class TemporalHolder:
    """Holds one Client. Connects on first use; after a failed connect waits `retry_s`
    before trying again, so a burst of requests does not hammer a dead server."""

    def __init__(self, settings: Settings, client: Client | None = None,
                 connect_timeout_s: float = 3.0, retry_s: float = 0.5) -> None:
        self.settings = settings
        self.address = settings.temporal_address
        self.connect_timeout_s = connect_timeout_s
        self.retry_s = retry_s
        self._client = client
        self._lock = asyncio.Lock()
        self._failed_at = 0.0
        self._last_error = ""
        self._call_failed_at = 0.0

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def last_error(self) -> str:
        return self._last_error

    def use(self, client: Client | None) -> None:
        """Replace the client (tests, or an embedding process that already has one)."""
        self._client = client
        self._failed_at = 0.0
        self._call_failed_at = 0.0

    def point_at(self, address: str) -> None:
        """Forget the client and connect to `address` on the next call."""
        self.address = address
        self._client = None
        self._failed_at = 0.0
        self._call_failed_at = 0.0

    async def get(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is not None:
                return self._client
            if time.monotonic() - self._failed_at < self.retry_s:
                raise TemporalUnavailable(self._last_error or "Temporal unreachable")
            settings = self.settings.model_copy(update={"temporal_address": self.address})
            try:
                self._client = await asyncio.wait_for(connect(settings),
                                                      self.connect_timeout_s)
            except Exception as exc:  # noqa: BLE001 - any failure means "not now"
                self._failed_at = time.monotonic()
                self._last_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("temporal unreachable", address=self.address,
                            error=self._last_error)
                raise TemporalUnavailable(self._last_error) from exc
            log.info("temporal connected", address=self.address)
            return self._client

    async def reachable(self) -> bool:
        """Whether a client can be had now (connects when needed)."""
        try:
            await self.get()
        except TemporalUnavailable:
            return False
        return True

    def note_failure(self, error: str = "") -> None:
        """A call through the client failed: requests skip inline calls for a while
        (the relay keeps probing)."""
        self._call_failed_at = time.monotonic()
        if error:
            self._last_error = error

    def note_success(self) -> None:
        self._call_failed_at = 0.0

    def recently_failed(self, window_s: float = 5.0) -> bool:
        return time.monotonic() - self._call_failed_at < window_s

    async def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            client = await self.get()
            return bool(await asyncio.wait_for(client.service_client.check_health(),
                                               timeout_s))
        except Exception:  # noqa: BLE001
            return False
