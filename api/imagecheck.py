"""Refuse decompression bombs by their header, before anything is stored or decoded.

A 30000×30000 PNG of a few hundred kilobytes decodes to 3.6 GB: a browser showing it to
an operator (or a thumbnailer) falls over. The pixel count is in every image's header, so
uploads are checked as they stream in, on the first bytes only:

- JPEG and PNG: Pillow's `Image.open`, which reads the header and decodes nothing; its
  own `DecompressionBombError` (past twice `Image.MAX_IMAGE_PIXELS`) counts as too large.
- WebP: Pillow needs the whole file to open one, so the canvas size is read from the
  first 30 bytes as RFC 9649 lays it out (VP8, VP8L or VP8X chunk).
- HEIC: Pillow has no reader, and Safari (officers' iPhones) decodes whatever the file
  says: the sizes come from the `ispe` properties in the `meta` box (ISO/IEC 23008-12),
  which cameras write before the pixel data; the largest image in the file counts.

An image whose size cannot be read within `PREFIX_LIMIT` bytes, or by its end, is refused
as unreadable: otherwise padding the header past the limit would slip a bomb through.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from api.errors import ApiError
from schema import words

PREFIX_LIMIT = 2 * 1024 * 1024  # bytes kept while looking for the size
_PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
CHECKED_TYPES = frozenset({*_PILLOW_FORMATS, "image/webp", "image/heic"})


class ImageTooLarge(ApiError):
    """422: more pixels than CANHBAO_MAX_IMAGE_PIXELS."""

    def __init__(self, limit: int, size: tuple[int, int] | None) -> None:
        millions = f"{limit / 1e6:.0f}"
        dims = f" ({size[0]}×{size[1]})" if size else ""
        super().__init__(
            422, "image_too_large", *words.both("error.image_too_large", dims=dims,
                                                millions=millions),
            limit_pixels=limit, headers={"Connection": "close"})


class ImageUnreadable(ApiError):
    """422: the bytes say image, but no size can be read from them."""

    def __init__(self) -> None:
        super().__init__(422, "image_unreadable", *words.both("error.image_unreadable"),
                         headers={"Connection": "close"})


def _webp_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) of a WebP canvas from its first 30 bytes; None when they do not
    hold a known first chunk."""
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy: 14-bit sizes
        return (int.from_bytes(head[26:28], "little") & 0x3FFF,
                int.from_bytes(head[28:30], "little") & 0x3FFF)
    if chunk == b"VP8L" and head[20] == 0x2F:  # lossless: 14 bits each, minus one
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit canvas sizes, minus one
        return (int.from_bytes(head[24:27], "little") + 1,
                int.from_bytes(head[27:30], "little") + 1)
    return None


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """The ISO BMFF boxes in data[start:end] as (type, payload start, box end). The last
    one may end past `end` (the rest has not arrived yet); a header cut short ends the
    list."""
    out = []
    at = start
    while at + 8 <= end:
        size = int.from_bytes(data[at:at + 4], "big")
        kind = data[at + 4:at + 8]
        header = 8
        if size == 1:  # a 64-bit size follows
            if at + 16 > end:
                break
            size, header = int.from_bytes(data[at + 8:at + 16], "big"), 16
        elif size == 0:  # to the end of the file
            size = end - at
        if size < header:
            break
        out.append((kind, at + header, at + size))
        at += size
    return out


def _heif_size(head: bytes) -> tuple[int, int] | None:
    """The largest (width, height) of the `ispe` properties of a HEIF file's `meta` box;
    None while the box has not arrived whole. ImageUnreadable when the pixel data comes
    first or there is no size at all."""
    for kind, start, end in _boxes(head, 0, len(head)):
        if kind == b"mdat":
            raise ImageUnreadable()
        if kind != b"meta":
            continue
        if end > len(head):
            return None
        sizes = [
            (int.from_bytes(head[p + 4:p + 8], "big"), int.from_bytes(head[p + 8:p + 12], "big"))
            for k1, s1, e1 in _boxes(head, start + 4, end) if k1 == b"iprp"  # meta: FullBox
            for k2, s2, e2 in _boxes(head, s1, e1) if k2 == b"ipco"
            for k3, p, e3 in _boxes(head, s2, e2) if k3 == b"ispe" and e3 - p >= 12
        ]
        if not sizes:
            raise ImageUnreadable()
        return max(sizes, key=lambda wh: wh[0] * wh[1])
    return None


class HeaderCheck:
    """Feed an upload's chunks in order; raises ImageTooLarge or ImageUnreadable as soon
    as it knows, and keeps at most PREFIX_LIMIT bytes meanwhile."""

    def __init__(self, mime: str, max_pixels: int) -> None:
        self.mime = mime
        self.max_pixels = max_pixels
        self.size: tuple[int, int] | None = None
        self._head = bytearray()
        self._done = mime not in CHECKED_TYPES
        self._next_try = 64  # parse again only once the prefix has grown enough (see feed)

    def feed(self, chunk: bytes) -> None:
        if self._done:
            return
        self._head += chunk[: PREFIX_LIMIT - len(self._head)]
        full = len(self._head) >= PREFIX_LIMIT
        # Parsing after every tiny chunk would cost the square of the prefix; growing the
        # step with the prefix keeps the total work linear.
        if full or len(self._head) >= self._next_try:
            self._try()
            self._next_try = len(self._head) + max(4096, len(self._head) // 2)
        if not self._done and full:
            raise ImageUnreadable()

    def finish(self) -> None:
        """The upload ended: an image whose size was never found is refused."""
        if not self._done:
            self._try()
        if not self._done:
            raise ImageUnreadable()

    def _try(self) -> None:
        size = self._read_size(bytes(self._head))
        if size is None:
            return
        self._done, self.size = True, size
        if size[0] <= 0 or size[1] <= 0:
            raise ImageUnreadable()
        if size[0] * size[1] > self.max_pixels:
            raise ImageTooLarge(self.max_pixels, size)

    def _read_size(self, head: bytes) -> tuple[int, int] | None:
        if self.mime == "image/webp":
            return _webp_size(head)
        if self.mime == "image/heic":
            return _heif_size(head)
        try:
            with warnings.catch_warnings():
                # Our own limit decides; Pillow only warns between its limit and twice it.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(head), formats=[_PILLOW_FORMATS[self.mime]]) as im:
                    return im.size
        except Image.DecompressionBombError:
            raise ImageTooLarge(self.max_pixels, None) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
                IndexError):
            return None  # not enough of the header yet (or never: see finish)
