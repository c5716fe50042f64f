"""Web Push for reporters: the server's public key, and a browser subscribing to (or
leaving) one report's news with its tracking token. See api/services/push.py."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import InfraDep
from api.services.push import public_key, subscribe, unsubscribe
from schema.push import PushKeyOut, PushSubscriptionIn, PushSubscriptionOut, PushUnsubscribeIn

router = APIRouter(prefix="/api/v1/push", tags=["citizen"])
_ERR = {"model": dict}


@router.get("/key", response_model=PushKeyOut, responses={404: _ERR})
async def push_key(infra: InfraDep, response: Response) -> PushKeyOut:
    """The VAPID public key (`applicationServerKey`, base64url of the uncompressed P-256
    point). 404 `push_disabled` when this server sends no Web Push."""
    response.headers["Cache-Control"] = "public, max-age=3600"
    return public_key(infra.settings)


@router.post("/subscriptions", status_code=201, response_model=PushSubscriptionOut,
             responses={200: {"model": PushSubscriptionOut}, 404: _ERR, 409: _ERR, 422: _ERR})
async def push_subscribe(infra: InfraDep, body: PushSubscriptionIn,
                         response: Response) -> PushSubscriptionOut:
    """Send this report's news to a browser: `tracking_token` plus the browser's
    `PushSubscription.toJSON()` (`endpoint`, `keys.p256dh`, `keys.auth`). 201 new, 200
    when the endpoint was already subscribed (its keys are updated). 404 unknown token or
    push off; 409 closed report or CANHBAO_PUSH_MAX_SUBSCRIPTIONS reached; 422 bad keys
    or an endpoint that is not an https push service."""
    out, created = await subscribe(infra, body)
    if not created:
        response.status_code = 200
    return out


@router.delete("/subscriptions", status_code=204, responses={404: _ERR, 422: _ERR})
async def push_unsubscribe(infra: InfraDep, body: PushUnsubscribeIn) -> Response:
    """Stop sending this report's news to the browser with `endpoint` (nothing to stop is
    fine: 204 either way). 404 unknown token."""
    await unsubscribe(infra, body)
    return Response(status_code=204)
