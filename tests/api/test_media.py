"""Photos as phones send them: HEIC, EXIF orientation, GPS and device metadata, alpha,
huge and broken files. Renditions are JPEG, oriented, without any metadata, at most
1600/320 px; the original stays untouched with its sha256."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import pillow_heif
import pytest
from PIL import Image

from api import media
from tests.api.conftest import MEDIA, Stack
from tests.images import real_image

pillow_heif.register_heif_opener()

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def phone_photo(fmt: str = "JPEG", size: tuple[int, int] = (2400, 1200),
                orientation: int = 6, mode: str = "RGB") -> bytes:
    """A photo as a phone stores it: landscape pixels, EXIF saying "rotate 90°", GPS,
    camera make and model. The left half is red, the right half blue."""
    im = Image.new(mode, size, (200, 20, 20, 255)[: len(mode)])
    im.paste((20, 20, 200, 128)[: len(mode)], (size[0] // 2, 0, size[0], size[1]))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 15 Pro"
    exif[GPS_IFD] = {1: "N", 2: (10.0, 46.0, 21.0), 3: "E", 4: (106.0, 41.0, 52.0)}
    buf = io.BytesIO()
    im.save(buf, format=fmt, exif=exif.tobytes())
    return buf.getvalue()


def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG"
    return im


def _no_metadata(im: Image.Image) -> None:
    assert not im.getexif(), dict(im.getexif())
    assert "exif" not in im.info and "icc_profile" not in im.info and "xmp" not in im.info
    assert not any(k for k in im.info if k.startswith(("xmp", "XML")))


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF", "WEBP", "PNG"])
def test_renditions_are_oriented_small_and_stripped(fmt: str) -> None:
    original = phone_photo(fmt)
    made = media.make_renditions(original)
    preview, thumb = _open(made["preview"]), _open(made["thumbnail"])
    # Orientation 6 applied: 2400x1200 landscape pixels become a 800x1600 portrait.
    assert preview.size == (800, 1600) and thumb.size == (160, 320)
    for im in (preview, thumb):
        _no_metadata(im)
    # Rotated 90° clockwise: the red left half is now on top.
    top = preview.convert("RGB").getpixel((400, 200))
    bottom = preview.convert("RGB").getpixel((400, 1400))
    assert top[0] > 150 and top[2] < 80, top
    assert bottom[2] > 150 and bottom[0] < 80, bottom
    assert b"Apple" not in made["preview"] and b"iPhone" not in made["thumbnail"]


def test_small_and_transparent_images_are_not_enlarged_and_flattened() -> None:
    made = media.make_renditions(phone_photo("PNG", (300, 200), 1, "RGBA"))
    preview = _open(made["preview"])
    assert preview.size == (300, 200) and preview.mode == "RGB"
    r, g, b = preview.getpixel((250, 100))  # half-transparent blue over white
    assert b > 200 and r > 100


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                               0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("data", [
    _png_header(30_000, 30_000),  # a decompression bomb: refused from its header
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 200,  # JPEG magic, no image
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x01" * 200,  # broken HEIC
])
def test_unreadable_or_huge_images_are_refused(data: bytes) -> None:
    with pytest.raises(media.RenditionError):
        media.make_renditions(data)


async def _upload(stack: Stack, name: str, data: bytes, mime: str) -> dict:
    r = await stack.client.post("/api/v1/attachments", files={"file": (name, data, mime)})
    assert r.status_code == 201, r.text
    return r.json()


async def test_case_attachments_carry_renditions_and_keep_the_original(stack: Stack) -> None:
    heic = phone_photo("HEIF")
    jpeg = phone_photo("JPEG")
    a_heic = await _upload(stack, "IMG_0001.HEIC", heic, "image/heic")
    a_jpeg = await _upload(stack, "IMG_0002.JPG", jpeg, "image/jpeg")
    a_video = await _upload(stack, "clip.mp4", *MEDIA["mp4"])
    iid = await stack.routed(attachments=[a_heic["attachment_id"], a_jpeg["attachment_id"],
                                          a_video["attachment_id"]])
    d = (await stack.detail(iid)).json()
    atts = {a["attachment_id"]: a for a in d["attachments"]}
    h = stack.auth("operator")
    for att, original in ((a_heic, heic), (a_jpeg, jpeg)):
        ref = atts[att["attachment_id"]]
        assert ref["sha256"] == hashlib.sha256(original).hexdigest()
        r = await stack.client.get(ref["url"], headers=h)
        assert r.content == original  # untouched evidence
        for kind, longest in (("preview", 1600), ("thumbnail", 320)):
            r = await stack.client.get(ref[f"{kind}_url"], headers=h)
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            im = _open(r.content)
            assert max(im.size) == longest and im.size[0] < im.size[1]
            _no_metadata(im)
        assert await stack.infra.storage.exists(
            media.rendition_key(att["attachment_id"], "preview"))
    video = atts[a_video["attachment_id"]]
    assert video["preview_url"] is None and video["thumbnail_url"] is None
    r = await stack.client.get(f"/api/v1/attachments/{a_video['attachment_id']}/preview",
                               headers=h)
    assert r.status_code == 404
    # The same scope as the original: an officer of another unit sees nothing.
    ref = atts[a_heic["attachment_id"]]
    assert (await stack.client.get(ref["preview_url"], headers=stack.auth("officer_b"))
            ).status_code == 404
    assert (await stack.client.get(ref["preview_url"], headers=stack.auth("officer_a"))
            ).status_code == 200
    assert (await stack.client.get(ref["preview_url"])).status_code == 401


async def test_an_unreadable_image_answers_422_not_500(stack: Stack) -> None:
    # Its header is sound (the upload takes it), its pixels are cut off half way.
    whole = real_image("JPEG", (256, 256), quality=95)
    att = await _upload(stack, "x.jpg", whole[: len(whole) // 2], "image/jpeg")
    iid = await stack.routed(attachments=[att["attachment_id"]])
    d = (await stack.detail(iid)).json()
    r = await stack.client.get(d["attachments"][0]["thumbnail_url"],
                               headers=stack.auth("operator"))
    assert r.status_code == 422 and r.json()["error"] == "unreadable_image"


async def test_the_preview_takes_every_image_the_upload_takes(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """One pixel limit: an image at the upload's limit renders; one stored before the limit
    was lowered is "too large" as the upload says, never "unreadable"."""
    settings = stack.infra.settings  # the app's, read on every request
    monkeypatch.setattr(settings, "max_image_pixels", 640_000)
    att = await _upload(stack, "x.png", real_image("PNG", (800, 800)), "image/png")
    iid = await stack.routed(attachments=[att["attachment_id"]])
    ref = (await stack.detail(iid)).json()["attachments"][0]
    h = stack.auth("operator")
    monkeypatch.setattr(settings, "max_image_pixels", 500_000)
    r = await stack.client.get(ref["thumbnail_url"], headers=h)
    assert r.status_code == 422 and r.json()["error"] == "image_too_large", r.text
    assert "800×800" in r.json()["detail"]
    monkeypatch.setattr(settings, "max_image_pixels", 640_000)
    assert (await stack.client.get(ref["thumbnail_url"], headers=h)).status_code == 200


def test_the_limit_is_the_settings_one() -> None:
    from core.settings import MAX_IMAGE_PIXELS, Settings

    assert Settings.model_fields["max_image_pixels"].default == MAX_IMAGE_PIXELS
    with pytest.raises(media.RenditionTooLarge):
        media.make_renditions(_png_header(8001, 8000))
