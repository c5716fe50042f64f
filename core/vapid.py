"""The VAPID key pair (RFC 8292) that signs our Web Push requests.

Where the key comes from, first found wins:
1. CANHBAO_VAPID_PRIVATE_KEY: PEM text, or the raw 32-byte P-256 private key in base64url;
2. CANHBAO_VAPID_PRIVATE_KEY_FILE: a file holding either;
3. demo mode only: `var/vapid_private.pem`, generated on first use (mode 0600) and kept, so
   subscriptions made in one `make run` still work in the next.

Outside demo mode with no key, push is off: `load_vapid` returns None with the reason,
the API says so (`GET /api/v1/push/key` 404 `push_disabled`) and nothing else changes.
The subject (CANHBAO_VAPID_SUBJECT) defaults to DEMO_SUBJECT in demo mode; outside demo
mode a key without a subject also leaves push off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.settings import Settings
from schema.push import b64url, b64url_decode

log = structlog.get_logger(__name__)

DEMO_SUBJECT = "mailto:canhbao-demo@example.vn"
DEMO_KEY_FILE = "vapid_private.pem"


class VapidError(ValueError):
    """The configured key cannot be read as a P-256 private key."""


@dataclass(frozen=True)
class VapidKeys:
    """The application server's key pair and the `sub` claim of its JWTs."""

    private_key: ec.EllipticCurvePrivateKey
    subject: str

    @property
    def public_key_b64(self) -> str:
        """The public key as the Push API's `applicationServerKey`: the uncompressed
        P-256 point (65 bytes) in base64url."""
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return b64url(raw)

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())


def parse_private_key(text: str | bytes) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM or raw base64url; VapidError otherwise."""
    data = text.encode() if isinstance(text, str) else text
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            raw = b64url_decode(data.decode())
            if len(raw) != 32:
                raise ValueError("a raw P-256 private key has 32 bytes")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise VapidError(f"the VAPID private key cannot be read: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise VapidError("the VAPID private key must be an EC P-256 key")
    return key


def _demo_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        return parse_private_key(path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        os.link(tmp, path)  # the first process to get here wins; the others read its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    log.warning("generated a demo VAPID key", path=str(path))
    return parse_private_key(path.read_bytes())


def load_vapid(settings: Settings) -> tuple[VapidKeys | None, str]:
    """The keys, or None and why push is off (English, for logs and the API's message).
    Raises VapidError for a configured key that cannot be read."""
    if settings.vapid_private_key.strip():
        key = parse_private_key(settings.vapid_private_key.strip())
    elif settings.vapid_private_key_file is not None:
        key = parse_private_key(settings.vapid_private_key_file.read_bytes())
    elif settings.demo:
        key = _demo_key(settings.var_dir / DEMO_KEY_FILE)
    else:
        return None, "no VAPID key is configured (CANHBAO_VAPID_PRIVATE_KEY)"
    subject = settings.vapid_subject.strip() or (DEMO_SUBJECT if settings.demo else "")
    if not subject:
        return None, "no VAPID subject is configured (CANHBAO_VAPID_SUBJECT)"
    return VapidKeys(key, subject), ""


_loaded: dict[tuple[object, ...], tuple[VapidKeys | None, str]] = {}


def cached_vapid(settings: Settings) -> tuple[VapidKeys | None, str]:
    """`load_vapid` once per configuration in this process. A key that cannot be read
    leaves push off with the reason (logged as an error): push never stops a process."""
    key = (settings.vapid_private_key, settings.vapid_private_key_file, settings.demo,
           settings.var_dir, settings.vapid_subject)
    if key not in _loaded:
        try:
            _loaded[key] = load_vapid(settings)
        except (VapidError, OSError) as exc:
            log.error("web push is off: the VAPID key cannot be used", error=str(exc))
            _loaded[key] = (None, f"the VAPID key cannot be used: {exc}")
    return _loaded[key]
