"""Photos as staff see them: browser-displayable renditions beside the untouched original.

The original a citizen or officer uploads is evidence: it is stored as sent, with its
sha256, and served at `/attachments/{id}/content`. For display each image also gets

- `preview`: JPEG, longest side at most 1600 px,
- `thumbnail`: JPEG, longest side at most 320 px,

with the EXIF orientation applied, colours converted to sRGB, and *no* metadata at all
(no EXIF, GPS, device, XMP or ICC data). HEIC/HEIF (iPhones) is read through pillow-heif,
so it shows in every browser. Renditions are made lazily on the first request and cached
in storage under a key derived from the attachment (`renditions/<id>/<kind>.jpg`); both
are made from one decode. Videos get no rendition: pages show a video icon that links to
the original (a poster frame would need FFmpeg bindings such as PyAV: not worth ~30 MB for
a tile; see the report of issue #10).

Errors: `RenditionError` for a file Pillow cannot read, `RenditionTooLarge` for one with more
pixels than the limit the upload applies (CANHBAO_MAX_IMAGE_PIXELS, at most
core.settings.MAX_IMAGE_PIXELS: one limit, so an image the upload took renders; only one
stored before the limit was lowered can be too large); the route answers 422 then
(`unreadable_image`, or `image_too_large` as the upload does).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import pillow_heif
import structlog
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from core.settings import MAX_IMAGE_PIXELS

log = structlog.get_logger(__name__)

pillow_heif.register_heif_opener()

RENDITIONS: dict[str, int] = {"preview": 1600, "thumbnail": 320}  # kind -> longest side, px
JPEG_QUALITY = {"preview": 85, "thumbnail": 80}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class RenditionError(ValueError):
    """The image cannot be rendered (unreadable, or too large: RenditionTooLarge)."""


class RenditionTooLarge(RenditionError):
    """More pixels than the limit: `limit` and `size` (width, height)."""

    def __init__(self, limit: int, size: tuple[int, int]) -> None:
        super().__init__(f"{size[0]}x{size[1]} pixels is more than {limit}")
        self.limit = limit
        self.size = size


def rendition_key(attachment_id: str, kind: str) -> str:
    """Where the rendition `kind` of an attachment is cached in storage."""
    return f"renditions/{attachment_id}/{kind}.jpg"


def has_renditions(content_type: str) -> bool:
    """Images get renditions; videos do not."""
    return content_type.startswith("image/")


def _to_srgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, source, _SRGB, outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError):
            log.info("icc profile ignored")
    return im.convert("RGB")


def _flatten(im: Image.Image) -> Image.Image:
    """RGB on white (JPEG has no transparency)."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        white.info["icc_profile"] = im.info.get("icc_profile")
        return white
    return im


def make_renditions(original: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> dict[str, bytes]:
    """Every rendition of `original` (any image Pillow or pillow-heif reads), as JPEG bytes
    without metadata. Raises RenditionTooLarge past `max_pixels` (the upload's limit),
    RenditionError when it cannot be read."""
    try:
        opened = Image.open(io.BytesIO(original))
        width, height = opened.size
        if width * height > max_pixels:
            raise RenditionTooLarge(max_pixels, (width, height))
        biggest = max(RENDITIONS.values())
        opened.draft("RGB", (biggest, biggest))  # JPEG: decode at a reduced scale, faster
        im: Image.Image = ImageOps.exif_transpose(opened)
        icc = im.info.get("icc_profile")
        im = _flatten(im)
        if icc and "icc_profile" not in im.info:
            im.info["icc_profile"] = icc
        im = _to_srgb(im)
    except RenditionError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RenditionError(f"{exc.__class__.__name__}: {exc}") from exc
    out: dict[str, bytes] = {}
    for kind, longest in sorted(RENDITIONS.items(), key=lambda kv: -kv[1]):
        im.thumbnail((longest, longest), Image.Resampling.LANCZOS)
        clean = Image.new("RGB", im.size)  # a fresh image: nothing of the source's info
        clean.paste(im)
        buf = io.BytesIO()
        clean.save(buf, format="JPEG", quality=JPEG_QUALITY[kind], optimize=True,
                   progressive=kind == "preview")
        out[kind] = buf.getvalue()
    return out


async def _read(storage: Any, key: str, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in storage.open(key):
        size += len(chunk)
        if size > limit:
            raise RenditionError("original larger than the image limit")
        parts.append(chunk)
    return b"".join(parts)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def ensure_rendition(storage: Any, max_image_bytes: int, attachment: Any,
                           kind: str, max_pixels: int = MAX_IMAGE_PIXELS) -> str:
    """The storage key of the rendition `kind` of an image attachment, making and caching
    every rendition on the first call. Raises RenditionError (RenditionTooLarge past
    `max_pixels`), KeyError for an unknown kind."""
    if kind not in RENDITIONS:
        raise KeyError(kind)
    key = rendition_key(attachment.id, kind)
    if await storage.exists(key):
        return key
    original = await _read(storage, attachment.storage_key, max_image_bytes)
    made = await asyncio.to_thread(make_renditions, original, max_pixels)
    for name, data in made.items():
        await storage.put(rendition_key(attachment.id, name), _one(data), "image/jpeg")
    log.info("renditions made", attachment_id=attachment.id,
             sizes={k: len(v) for k, v in made.items()})
    return key
