"""The reporter's Web Push subscriptions: the public key to subscribe with, and adding or
removing a browser's subscription to one report's news, authorised by the tracking token.

Sending is not here: the projection queues a push per event and the worker sends it
(activities/push.py). Rules: the endpoint is read once by core/push_endpoint.py (a plain
host, https on port 443, a browser push service listed in CANHBAO_PUSH_SERVICE_HOSTS: the
worker will POST to it, so nothing else) and kept as rebuilt from the parts approved, the
same check the worker makes again before each send; a subscription whose
`expirationTime` has already passed is refused (the worker drops one once it passes); at
most CANHBAO_PUSH_MAX_SUBSCRIPTIONS per report; the same endpoint again updates its keys and expiry.
"""

from __future__ import annotations

import structlog
from sqlalchemy import delete, func, select
from sqlmodel import col

from api.errors import ApiError, FieldError
from api.infra import Infra
from api.services.tracking import TrackingConflict, report_for
from core.push_endpoint import EndpointRefused, Refusal, check_endpoint, parse_endpoint
from core.settings import Settings
from core.vapid import VapidKeys, cached_vapid
from schema import words
from schema.push import PushKeyOut, PushSubscriptionIn, PushSubscriptionOut, PushUnsubscribeIn
from schema.tables import Incident, PushOutbox, PushSubscription, Report, utcnow

log = structlog.get_logger(__name__)

class PushDisabled(ApiError):
    """404 `push_disabled`: this server sends no Web Push (no VAPID key configured)."""

    def __init__(self) -> None:
        super().__init__(404, "push_disabled", *words.both("error.push_disabled"))


class TooManySubscriptions(ApiError):
    """409: the report already has the most subscriptions it may have."""

    def __init__(self, limit: int) -> None:
        super().__init__(409, "too_many_subscriptions",
                         *words.both("error.too_many_subscriptions", limit=limit))


def push_keys(settings: Settings) -> VapidKeys:
    """The server's VAPID keys, or PushDisabled."""
    keys, _why = cached_vapid(settings)
    if keys is None:
        raise PushDisabled()
    return keys


def public_key(settings: Settings) -> PushKeyOut:
    """`GET /api/v1/push/key`: the applicationServerKey (base64url), or PushDisabled."""
    return PushKeyOut(public_key=push_keys(settings).public_key_b64)


_REFUSALS = {
    Refusal.INVALID: "field.endpoint.invalid",
    Refusal.NOT_HTTPS: "field.endpoint.not_https",
    Refusal.NOT_PUSH_SERVICE: "field.endpoint.not_push_service",
}


def checked_endpoint(settings: Settings, endpoint: str) -> str:
    """The endpoint as the worker will send to it (core/push_endpoint.py: read once,
    rebuilt from the approved parts), or a 422 FieldError "endpoint" saying why not."""
    try:
        return check_endpoint(settings, endpoint).url
    except EndpointRefused as exc:
        raise FieldError("endpoint", *words.both(_REFUSALS[exc.reason])) from None


def stored_form(endpoint: str) -> str:
    """How an endpoint is kept: the grammar's reading when it has one (so an
    unsubscription finds what a subscription stored), else as given, trimmed."""
    try:
        return parse_endpoint(endpoint).url
    except EndpointRefused:
        return endpoint.strip()


def check_expiry(body: PushSubscriptionIn) -> None:
    """422 FieldError "expirationTime" when the subscription has already expired."""
    expires = body.expires_at
    if expires is not None and expires <= utcnow():
        raise FieldError("expirationTime", *words.both("field.expiration_time.past"))


async def subscribe(infra: Infra, body: PushSubscriptionIn) -> tuple[PushSubscriptionOut, bool]:
    """Add (or refresh) a subscription to a report's news. Returns it and whether it is
    new. 404 for an unknown token or with push off, 409 once the report is closed or at
    the per-report limit, 422 for an endpoint the worker may not send to or an
    `expirationTime` already past."""
    push_keys(infra.settings)
    endpoint = checked_endpoint(infra.settings, body.endpoint)
    check_expiry(body)
    report = await report_for(infra, body.tracking_token)
    limit = infra.settings.push_max_subscriptions
    async with infra.db.session() as s:
        # Serialise subscriptions of one report (the count below must hold).
        await s.execute(select(col(Report.id)).where(col(Report.id) == report.id)
                        .with_for_update())
        row = await s.get(Incident, report.id)
        if row is not None and not row.is_open:
            raise TrackingConflict(*words.both("error.conflict.push_closed"))
        sub = (await s.execute(select(PushSubscription).where(
            col(PushSubscription.incident_id) == report.id,
            col(PushSubscription.endpoint) == endpoint))).scalar_one_or_none()
        count = (await s.execute(select(func.count()).select_from(PushSubscription).where(
            col(PushSubscription.incident_id) == report.id))).scalar_one()
        created = sub is None
        if sub is None:
            if count >= limit:
                raise TooManySubscriptions(limit)
            sub = PushSubscription(incident_id=report.id, endpoint=endpoint,
                                   p256dh=body.keys.p256dh, auth=body.keys.auth,
                                   silent=bool((report.payload or {}).get("silent")),
                                   expires_at=body.expires_at)
            count += 1
        else:
            sub.p256dh, sub.auth = body.keys.p256dh, body.keys.auth
            sub.expires_at = body.expires_at
        s.add(sub)
        await s.commit()
        await s.refresh(sub)
    log.info("push subscription saved", created=created, subscriptions=count)
    return PushSubscriptionOut(id=sub.id, endpoint=sub.endpoint, silent=sub.silent,
                               subscriptions=count), created


async def unsubscribe(infra: Infra, body: PushUnsubscribeIn) -> None:
    """Remove a browser's subscription to a report (and what is queued for it); nothing
    to remove is fine. 404 for an unknown token."""
    report = await report_for(infra, body.tracking_token)
    async with infra.db.session() as s:
        ids = list((await s.execute(select(col(PushSubscription.id)).where(
            col(PushSubscription.incident_id) == report.id,
            col(PushSubscription.endpoint) == stored_form(body.endpoint)))).scalars().all())
        if ids:
            await s.execute(delete(PushOutbox).where(col(PushOutbox.subscription_id).in_(ids)))
            await s.execute(delete(PushSubscription).where(col(PushSubscription.id).in_(ids)))
            await s.commit()
    log.info("push subscription removed", removed=len(ids))
