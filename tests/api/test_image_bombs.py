"""Decompression bombs (issue #9, 6): an image whose header claims more pixels than
CANHBAO_MAX_IMAGE_PIXELS is refused with 422 and a clear message, from its header only,
and nothing is stored; ordinary photos pass."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.settings import MAX_IMAGE_PIXELS
from schema.tables import Attachment
from tests.api.conftest import Stack
from tests.images import (
    gif_claiming,
    heic_claiming,
    jpeg_claiming,
    jpeg_without_frame,
    png_claiming,
    real_image,
    webp_claiming,
)

BOMBS = {
    "png": png_claiming(30000, 30000),
    "jpeg": jpeg_claiming(30000, 30000),
    "webp": webp_claiming(30000, 30000),
    "heic": heic_claiming(30000, 30000),
    # 64.008 MP: what the upload took before (its limit was 120 MP) but the preview
    # called unreadable (its own limit was 64 MP); one limit now.
    "png-just-past-the-limit": png_claiming(8001, 8000),
}


async def _count(stack: Stack) -> int:
    async with stack.infra.db.session() as s:
        return (await s.execute(select(func.count()).select_from(Attachment))).scalar_one()


def _stored_files(stack: Stack) -> list[str]:
    root = stack.settings.storage_dir
    assert root is not None
    return [p.name for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize("kind", sorted(BOMBS))
async def test_bombs_are_refused_by_their_header(stack: Stack, kind: str) -> None:
    data = BOMBS[kind]
    assert len(data) < 4096  # a few bytes that would decode to gigabytes
    before = await _count(stack)
    r = await stack.client.post("/api/v1/attachments", files={"file": (f"x.{kind}", data)})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "image_too_large" and "64 triệu điểm ảnh" in body["detail"]
    assert body["limit_pixels"] == MAX_IMAGE_PIXELS == 64_000_000
    r = await stack.client.post("/api/v1/attachments", files={"file": (f"x.{kind}", data)},
                                headers={"Accept-Language": "en"})
    assert "too many pixels" in r.json()["detail"]
    assert await _count(stack) == before and _stored_files(stack) == []


async def test_the_limit_is_a_setting_and_the_message_names_the_size(make_stack) -> None:
    stack = await make_stack(with_worker=False, CANHBAO_MAX_IMAGE_PIXELS=1_000_000)
    r = await stack.client.post("/api/v1/attachments",
                                files={"file": ("a.png", real_image("PNG", (2000, 600)))})
    assert r.status_code == 422 and "(2000×600)" in r.json()["detail"]
    r = await stack.client.post("/api/v1/attachments",
                                files={"file": ("b.png", real_image("PNG", (1000, 1000)))})
    assert r.status_code == 201, r.text


async def test_ordinary_photos_pass(stack: Stack) -> None:
    photos = [real_image("JPEG", (4032, 3024)), real_image("PNG", (1080, 1920)),
              real_image("WEBP", (1600, 1200)), real_image("WEBP", (640, 480), lossless=True),
              heic_claiming(4032, 3024)]
    for data in photos:
        r = await stack.client.post("/api/v1/attachments", files={"file": ("p", data)})
        assert r.status_code == 201, r.text


async def test_a_header_that_never_gives_a_size_is_refused(stack: Stack) -> None:
    before = await _count(stack)
    for data in (jpeg_without_frame(3 * 1024 * 1024),  # past the 2 MB look-ahead
                 jpeg_without_frame(10_000),  # ends without a frame
                 webp_claiming(30, 30)[:12] + b"VP8 " + b"\0" * 100,  # no VP8 start code
                 heic_claiming(4032, 3024, meta_first=False)):  # pixels before sizes
        r = await stack.client.post("/api/v1/attachments", files={"file": ("a", data)})
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "image_unreadable"
    assert await _count(stack) == before and _stored_files(stack) == []


async def test_gif_is_not_an_accepted_type(stack: Stack) -> None:
    r = await stack.client.post("/api/v1/attachments",
                                files={"file": ("a.gif", gif_claiming(30000, 30000))})
    assert r.status_code == 415


@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_the_header_is_found_however_the_bytes_arrive(piece: int) -> None:
    from api.imagecheck import HeaderCheck, ImageTooLarge

    cases = {"image/png": (png_claiming(30000, 30000), real_image("PNG", (640, 480))),
             "image/jpeg": (jpeg_claiming(30000, 30000), real_image("JPEG", (640, 480))),
             "image/webp": (webp_claiming(30000, 30000), real_image("WEBP", (640, 480))),
             "image/heic": (heic_claiming(30000, 30000), heic_claiming(640, 480))}
    for mime, (bomb, fine) in cases.items():
        check = HeaderCheck(mime, 120_000_000)
        with pytest.raises(ImageTooLarge):
            for i in range(0, len(bomb), piece):
                check.feed(bomb[i:i + piece])
            check.finish()
        check = HeaderCheck(mime, 120_000_000)
        for i in range(0, len(fine), piece):
            check.feed(fine[i:i + piece])
        check.finish()
        assert check.size == (640, 480), mime
