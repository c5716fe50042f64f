"""A small local push service standing in for a browser vendor's (FCM, Mozilla autopush),
for the Web Push tests: it plays the browser too, holding each subscription's ECDH key
pair and auth secret.

For every POST to a subscription's endpoint it checks what a real push service checks
(RFC 8292 VAPID): `Authorization: vapid t=<JWT>, k=<key>` with `k` the application server
key the subscription was made with, an ES256 signature by that key, `aud` = the
endpoint's origin, `exp` in the future and at most 24 h away, a `sub`; then a TTL header
and `Content-Encoding: aes128gcm`; and it decrypts the body (RFC 8291) with the
subscription's private key and auth secret (http_ece + cryptography). What it received is
kept in `received`; a request that fails a check is kept in `refused` with the reason
and answered 400/401/403. `answer[sub_id] = 410` makes it answer 410 Gone for one.

Runs uvicorn in a thread with its own event loop, on a free port.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from fastapi import FastAPI, Request, Response

from schema.push import b64url, b64url_decode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BrowserSubscription:
    """One subscription as a browser holds it (the private parts stay here)."""

    id: str
    endpoint: str
    server_key: str  # the applicationServerKey it was made with (base64url)
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    def to_json(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives the page."""
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}


@dataclass
class Received:
    subscription_id: str
    claims: dict[str, Any]
    ttl: int
    urgency: str | None
    payload: dict[str, Any]


@dataclass
class PushServiceStandIn:
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    subscriptions: dict[str, BrowserSubscription] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    answer: dict[str, int] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # every path asked, any method

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def subscribe(self, server_key: str) -> BrowserSubscription:
        """What `pushManager.subscribe({applicationServerKey: server_key})` makes."""
        sub_id = b64url(os.urandom(12))
        sub = BrowserSubscription(sub_id, f"{self.origin}/push/{sub_id}", server_key,
                                  ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
        self.subscriptions[sub_id] = sub
        return sub

    def for_subscription(self, sub_id: str) -> list[Received]:
        return [r for r in self.received if r.subscription_id == sub_id]

    # --- the service --------------------------------------------------------------------
    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def log(request: Request, call_next: Any) -> Response:
            self.requests.append(request.url.path)
            response: Response = await call_next(request)
            return response

        @app.post("/push/{sub_id}")
        async def push(sub_id: str, request: Request) -> Response:
            sub = self.subscriptions.get(sub_id)
            if sub is None:
                return Response(status_code=404)
            body = await request.body()
            try:
                claims = self._check_vapid(sub, request.headers.get("authorization", ""))
                ttl = int(request.headers.get("ttl", ""))
                if request.headers.get("content-encoding") != "aes128gcm":
                    raise ValueError("Content-Encoding must be aes128gcm")
                plain = http_ece.decrypt(body, private_key=sub.private_key,
                                         auth_secret=sub.auth, version="aes128gcm")
                payload = json.loads(plain)
            except PermissionError as exc:
                self.refused.append((sub_id, str(exc)))
                return Response(str(exc), status_code=403)
            except Exception as exc:  # noqa: BLE001 - recorded for the test to read
                self.refused.append((sub_id, f"{exc.__class__.__name__}: {exc}"))
                return Response(str(exc), status_code=400)
            status = self.answer.get(sub_id, 201)
            if status < 300:
                self.received.append(Received(sub_id, claims, ttl,
                                              request.headers.get("urgency"), payload))
            return Response(status_code=status)

        return app

    def _check_vapid(self, sub: BrowserSubscription, header: str) -> dict[str, Any]:
        scheme, _, params = header.partition(" ")
        if scheme.lower() != "vapid":
            raise PermissionError(f"Authorization scheme {scheme!r} is not vapid")
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        token, key = parts.get("t", ""), parts.get("k", "")
        if b64url_decode(key) != b64url_decode(sub.server_key):
            raise PermissionError("k is not the subscription's application server key")
        head_b64, claims_b64, sig_b64 = token.split(".")
        head = json.loads(b64url_decode(head_b64))
        if head.get("alg") != "ES256":
            raise PermissionError(f"JWT alg {head.get('alg')!r} is not ES256")
        sig = b64url_decode(sig_b64)
        if len(sig) != 64:
            raise PermissionError("ES256 signature must be 64 bytes (r || s)")
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                   int.from_bytes(sig[32:], "big"))
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                              b64url_decode(key))
        try:
            public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise PermissionError("the JWT signature does not verify") from None
        claims = json.loads(b64url_decode(claims_b64))
        if claims.get("aud") != self.origin:
            raise PermissionError(f"aud {claims.get('aud')!r} is not {self.origin!r}")
        now = time.time()
        exp = claims.get("exp")
        if not isinstance(exp, int) or not now < exp <= now + 24 * 3600:
            raise PermissionError(f"exp {exp!r} is not within the next 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise PermissionError(f"sub {claims.get('sub')!r} is missing or not a contact")
        return claims

    # --- running ------------------------------------------------------------------------
    def start(self) -> PushServiceStandIn:
        config = uvicorn.Config(self.app(), host=self.host, port=self.port,
                                log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="push-standin",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the push-service stand-in did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
