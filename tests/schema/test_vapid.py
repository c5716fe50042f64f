"""Where the VAPID key comes from (core/vapid.py), and what the push texts say
(schema/push.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.settings import Settings
from core.vapid import DEMO_SUBJECT, VapidError, cached_vapid, load_vapid
from schema.push import PUSH_WORTHY, b64url, push_message


def _settings(tmp_path: Path, **values: object) -> Settings:
    base: dict[str, object] = {"CANHBAO_DEMO": True, "CANHBAO_VAR_DIR": tmp_path,
                               "DATABASE_URL": "sqlite:///x.db"}
    base.update(values)
    return Settings(**base)  # type: ignore[arg-type]


def test_demo_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first, _ = load_vapid(_settings(tmp_path))
    again, _ = load_vapid(_settings(tmp_path))
    assert first is not None and again is not None
    assert first.public_key_b64 == again.public_key_b64
    assert first.subject == DEMO_SUBJECT
    pem = tmp_path / "vapid_private.pem"
    assert pem.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_configured_keys_pem_raw_and_file(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    raw = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    path = tmp_path / "key.pem"
    path.write_text(pem)
    expected = b64url(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
    for extra in ({"CANHBAO_VAPID_PRIVATE_KEY": pem}, {"CANHBAO_VAPID_PRIVATE_KEY": raw},
                  {"CANHBAO_VAPID_PRIVATE_KEY_FILE": str(path)}):
        keys, why = load_vapid(_settings(tmp_path, CANHBAO_DEMO=False,
                                         CANHBAO_SECRET_KEY="s" * 40,
                                         CANHBAO_VAPID_SUBJECT="mailto:a@b.vn", **extra))
        assert keys is not None, why
        assert keys.public_key_b64 == expected and keys.subject == "mailto:a@b.vn"


def test_push_is_off_without_key_or_subject_outside_demo(tmp_path: Path) -> None:
    plain: Callable[..., Settings] = lambda **v: _settings(  # noqa: E731
        tmp_path, CANHBAO_DEMO=False, CANHBAO_SECRET_KEY="s" * 40, **v)
    keys, why = load_vapid(plain())
    assert keys is None and "CANHBAO_VAPID_PRIVATE_KEY" in why
    raw = b64url(b"\x01" * 32)
    keys, why = load_vapid(plain(CANHBAO_VAPID_PRIVATE_KEY=raw))
    assert keys is None and "CANHBAO_VAPID_SUBJECT" in why
    assert not (tmp_path / "vapid_private.pem").exists()


def test_bad_keys_and_subjects(tmp_path: Path) -> None:
    for bad in ("not a key", b64url(b"\x01" * 31),
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"):
        with pytest.raises(VapidError):
            load_vapid(_settings(tmp_path, CANHBAO_VAPID_PRIVATE_KEY=bad))
        keys, why = cached_vapid(_settings(tmp_path, CANHBAO_VAPID_PRIVATE_KEY=bad))
        assert keys is None and "cannot be used" in why  # off, never a crash
    with pytest.raises(ValueError, match="mailto"):
        _settings(tmp_path, CANHBAO_VAPID_SUBJECT="ttttch@example.vn")


def test_push_texts() -> None:
    assert push_message("receive", "AB12CD34", None) is None
    assert push_message("add_info", "AB12CD34", None) is None
    title, body, urgent = push_message("arrive", "AB12CD34", None) or ("", "", True)
    assert title == "Công an đã có mặt" and "AB12CD34" in body and not urgent
    assert push_message("note", "AB12CD34", None) is None  # an internal note: nothing
    _, body, _ = push_message("note", "AB12CD34", "  Đã   bắt giữ " + "x" * 300) or ("", "", 0)
    assert body.startswith("Đã bắt giữ ") and len(body) == 140 and body.endswith("…")
    _, body, urgent = push_message("message", "AB12CD34", None) or ("", "", False)
    assert "AB12CD34" in body and urgent
    for text in PUSH_WORTHY.values():
        assert len(text.title) <= 40 and len(text.body) <= 120
