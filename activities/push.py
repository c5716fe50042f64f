"""Sending the reporter's Web Push notifications (RFC 8030/8291/8292, with pywebpush).

The projection queues one `push_outbox` row per (subscription, event) in the transaction
that writes the event (activities/projection.py `_queue_push`); `PushSender.drain_once`,
run every CANHBAO_PUSH_INTERVAL_S by the worker process (`push_forever`), sends them.

Why an outbox and not an activity of the workflow: it writes the read model with local
activities inside the workflow task, and a call to a push service there would hold the
workflow up for as long as the service is slow; a new activity scheduled by the workflow
would change the command sequence of every incident (a patch and new recorded histories)
for something the incident does not depend on. The outbox gives the same guarantees as the
intake relay (core/outbox.py): queued atomically with the event, sent at least once,
retried with back-off, and never able to fail or slow an incident.

A subscription past its `expires_at` (the browser's expirationTime) is deleted with its
queued rows at the start of each pass, before anything is sent to it.

Before each send the endpoint is checked again (core/push_endpoint.py, the check a
subscription passed) and the request goes to the URL rebuilt from the parts it approved; a
row that fails (stored under older rules, or its host since taken off
CANHBAO_PUSH_SERVICE_HOSTS) is deleted with its queue, logged, and nothing is sent.

Answers from the push service:
- 2xx: sent, the row goes;
- 404/410: the subscription is gone (RFC 8030 §7.3): it and its queued rows are deleted;
- 400/403/413: the request itself is refused, a retry cannot help: given up;
- anything else (429, 5xx, network): retried after min(2^attempts, 600) s (or the service's
  Retry-After), given up after MAX_ATTEMPTS; each give-up is logged with the error.
Several workers may drain at once: each row is claimed with a conditional UPDATE first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from sqlalchemy import Table, delete, or_, select, update

from core.db import Database
from core.push_endpoint import EndpointRefused, check_endpoint
from core.settings import Settings
from core.vapid import VapidKeys, cached_vapid
from schema.push import payload_json
from schema.tables import PushOutbox, PushSubscription, Report, utcnow

log = structlog.get_logger(__name__)

OUTBOX: Table = PushOutbox.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS: Table = PushSubscription.__table__  # type: ignore[attr-defined]
REPORTS: Table = Report.__table__  # type: ignore[attr-defined]

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=120)  # a claimed row is another drainer's again after this
SEND_TIMEOUT_S = 10.0
GONE = (404, 410)
PERMANENT = (400, 403, 413)
PUSHES = Counter("canhbao_push_sent_total", "Web Push requests to reporters, by result",
                 ["result"])


@dataclass(frozen=True)
class Delivery:
    """One queued notification with what sending it needs."""

    row_id: int
    claimed_at: datetime
    attempts: int
    subscription_id: str
    endpoint: str
    p256dh: str
    auth: str
    silent: bool
    token: str
    incident_id: str
    seq: int
    title: str
    body: str
    urgent: bool


@dataclass(frozen=True)
class Answer:
    """What the push service said: an HTTP status (0: no answer) and Retry-After."""

    status: int
    retry_after_s: float | None = None
    error: str = ""


Send = Callable[[Delivery, bytes], Answer]


class PushSender:
    """Drains `push_outbox`. `send` is replaceable in tests; by default pywebpush."""

    def __init__(self, settings: Settings, db: Database, keys: VapidKeys,
                 send: Send | None = None, concurrency: int = 8) -> None:
        self.settings = settings
        self.db = db
        self.keys = keys
        self.vapid = Vapid(private_key=keys.private_key)
        self.send = send or self._webpush
        self.sem = asyncio.Semaphore(concurrency)

    def tracking_url(self, token: str) -> str:
        """Where a tap on the notification goes (relative without CANHBAO_PUBLIC_URL:
        the service worker resolves it against its own origin)."""
        return f"{(self.settings.public_url or '').rstrip('/')}/t/{token}"

    def payload(self, d: Delivery) -> bytes:
        return json.dumps(payload_json(d.title, d.body, self.tracking_url(d.token), d.silent,
                                       f"canhbao-{d.incident_id}"),
                          ensure_ascii=False).encode()

    def _webpush(self, d: Delivery, data: bytes) -> Answer:
        headers = {"Urgency": "high" if d.urgent else "normal"}
        try:
            response = webpush(
                subscription_info={"endpoint": d.endpoint,
                                   "keys": {"p256dh": d.p256dh, "auth": d.auth}},
                data=data.decode(), vapid_private_key=self.vapid,
                vapid_claims={"sub": self.keys.subject},  # aud and exp: pywebpush fills them
                content_encoding="aes128gcm", ttl=self.settings.push_ttl_s,
                headers=headers, timeout=SEND_TIMEOUT_S)
        except WebPushException as exc:
            resp = exc.response
            if resp is None:
                return Answer(0, error=str(exc)[:500])
            return Answer(resp.status_code, _retry_after(resp.headers.get("Retry-After")),
                          f"{resp.status_code}: {resp.text[:300]}")
        except Exception as exc:  # noqa: BLE001 - network trouble: retried
            return Answer(0, error=f"{exc.__class__.__name__}: {exc}"[:500])
        return Answer(getattr(response, "status_code", 201))

    async def drain_once(self, batch: int = 100) -> int:
        """Send what is due now. Returns how many pushes the services accepted."""
        now = utcnow()
        await self.drop_expired(now)
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(
                select(OUTBOX, SUBSCRIPTIONS.c.endpoint, SUBSCRIPTIONS.c.p256dh,
                       SUBSCRIPTIONS.c.auth, SUBSCRIPTIONS.c.silent, REPORTS.c.tracking_token)
                .join(SUBSCRIPTIONS, SUBSCRIPTIONS.c.id == OUTBOX.c.subscription_id)
                .join(REPORTS, REPORTS.c.id == OUTBOX.c.incident_id)
                .where(OUTBOX.c.next_attempt_at <= now,
                       or_(SUBSCRIPTIONS.c.expires_at.is_(None),
                           SUBSCRIPTIONS.c.expires_at > now))
                .order_by(OUTBOX.c.id).limit(batch))).mappings().all()
        claimed = [d for d in await asyncio.gather(*(self._claim(r, now) for r in rows)) if d]
        # One subscription's notifications go in event order (they share a tag: the last
        # one shown must be the newest); different subscriptions go side by side.
        by_subscription: dict[str, list[Delivery]] = {}
        for d in sorted(claimed, key=lambda d: (d.seq, d.row_id)):
            by_subscription.setdefault(d.subscription_id, []).append(d)

        async def in_order(deliveries: list[Delivery]) -> int:
            sent = 0
            for d in deliveries:
                if not await self._deliver(d):
                    break  # the rest wait for the next pass (or went with the subscription)
                sent += 1
            return sent

        return sum(await asyncio.gather(*(in_order(g) for g in by_subscription.values())))

    async def drop_expired(self, now: datetime) -> int:
        """Delete the subscriptions whose expiry has passed, with what is queued for them
        (nothing is sent to them). Returns how many went."""
        expired = SUBSCRIPTIONS.c.expires_at <= now
        async with self.db.engine.begin() as conn:
            await conn.execute(delete(OUTBOX).where(OUTBOX.c.subscription_id.in_(
                select(SUBSCRIPTIONS.c.id).where(expired))))
            gone = (await conn.execute(delete(SUBSCRIPTIONS).where(expired))).rowcount
        if gone:
            PUSHES.labels("expired").inc(gone)
            log.info("expired push subscriptions deleted", count=gone)
        return int(gone or 0)

    async def _claim(self, row: Any, now: datetime) -> Delivery | None:
        async with self.db.engine.begin() as conn:
            done = await conn.execute(update(OUTBOX).where(
                OUTBOX.c.id == row["id"], OUTBOX.c.next_attempt_at == row["next_attempt_at"])
                .values(next_attempt_at=now + LEASE, attempts=row["attempts"] + 1))
        if done.rowcount != 1:
            return None  # another drainer has it
        return Delivery(
            row_id=row["id"], claimed_at=now + LEASE, attempts=row["attempts"] + 1,
            subscription_id=row["subscription_id"], endpoint=row["endpoint"],
            p256dh=row["p256dh"], auth=row["auth"], silent=bool(row["silent"]),
            token=row["tracking_token"], incident_id=row["incident_id"], seq=row["seq"],
            title=row["title"], body=row["body"], urgent=bool(row["urgent"]))

    async def _deliver(self, d: Delivery) -> bool:
        try:
            # Checked again here, and sent to the URL rebuilt from what the check read: a
            # row stored under older rules, or hosts changed since, never reaches the wire.
            d = replace(d, endpoint=check_endpoint(self.settings, d.endpoint).url)
        except EndpointRefused as exc:
            await self._forget(d.subscription_id)
            PUSHES.labels("refused").inc()
            log.warning("push endpoint refused before sending: subscription deleted",
                        incident_id=d.incident_id, subscription=d.subscription_id,
                        reason=exc.reason.value)
            return False
        async with self.sem:
            answer = await asyncio.to_thread(self.send, d, self.payload(d))
        logged = log.bind(incident_id=d.incident_id, seq=d.seq, subscription=d.subscription_id,
                          status=answer.status)
        if answer.status in GONE:
            PUSHES.labels("gone").inc()
            await self._forget(d.subscription_id)
            logged.info("push subscription gone: deleted")
            return False
        async with self.db.engine.begin() as conn:
            if 200 <= answer.status < 300:
                PUSHES.labels("sent").inc()
                await conn.execute(delete(OUTBOX).where(OUTBOX.c.id == d.row_id))
                await conn.execute(update(SUBSCRIPTIONS).where(
                    SUBSCRIPTIONS.c.id == d.subscription_id).values(last_sent_at=utcnow()))
                logged.info("push sent")
                return True
            give_up = answer.status in PERMANENT or d.attempts >= MAX_ATTEMPTS
            wait = answer.retry_after_s or min(2.0 ** d.attempts, 600.0)
            PUSHES.labels("given_up" if give_up else "retry").inc()
            await conn.execute(update(OUTBOX).where(OUTBOX.c.id == d.row_id).values(
                next_attempt_at=None if give_up else utcnow() + timedelta(seconds=wait),
                last_error=answer.error or f"status {answer.status}"))
        if give_up:
            logged.error("push given up", attempts=d.attempts, error=answer.error)
        else:
            logged.warning("push failed, retrying", attempts=d.attempts, in_s=wait,
                           error=answer.error)
        return False


    async def _forget(self, subscription_id: str) -> None:
        """Delete a subscription and everything queued for it."""
        async with self.db.engine.begin() as conn:
            await conn.execute(delete(OUTBOX).where(OUTBOX.c.subscription_id == subscription_id))
            await conn.execute(delete(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == subscription_id))


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return min(float(value.strip()), 3600.0)
    return None


def build_push_sender(settings: Settings, db: Database) -> PushSender | None:
    """The worker's sender, or None (logged) when push is off (core/vapid.py)."""
    keys, why = cached_vapid(settings)
    if keys is None:
        log.info("web push is off", reason=why)
        return None
    return PushSender(settings, db, keys)


async def push_forever(sender: PushSender) -> None:
    """The worker process's push loop: a pass every CANHBAO_PUSH_INTERVAL_S; a failing
    pass is logged and the loop goes on."""
    while True:
        try:
            await sender.drain_once()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep sending
            log.exception("push pass failed")
        await asyncio.sleep(sender.settings.push_interval_s)
