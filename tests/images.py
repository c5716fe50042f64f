"""Image bytes for tests: small real images, and headers that claim huge sizes
(decompression bombs) without the data to back them."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def real_image(fmt: str, size: tuple[int, int] = (2, 2), **options: object) -> bytes:
    """A real image in Pillow's format `fmt` (JPEG, PNG, WEBP, GIF)."""
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buf, fmt, **options)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small valid PNG whose header says width × height (a bomb when large)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    rows = zlib.compress(b"\0" * 1024, 9)  # the first rows of zeros, deflated
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG with its frame header (SOF0) rewritten to width × height."""
    data = bytearray(real_image("JPEG", (8, 8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP header with a width × height canvas."""
    vp8x = (b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0"
            + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))
    body = b"WEBP" + vp8x + b"\0" * 64
    return b"RIFF" + struct.pack("<I", len(body)) + body


def gif_claiming(width: int, height: int) -> bytes:
    """A GIF header with a width × height logical screen."""
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b"\x3b"


def jpeg_without_frame(padding: int) -> bytes:
    """A JPEG start followed by `padding` bytes of comment segments and no frame header:
    its size cannot be read."""
    out = bytearray(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    segment = b"\xff\xfe" + struct.pack(">H", 65535) + b"x" * 65533
    while len(out) < padding:
        out += segment
    return bytes(out)


def _box(kind: bytes, payload: bytes, full: bool = False) -> bytes:
    body = (b"\0\0\0\0" if full else b"") + payload  # a FullBox starts with version+flags
    return struct.pack(">I", 8 + len(body)) + kind + body


def heic_claiming(width: int, height: int, thumbnail: tuple[int, int] = (320, 240),
                  meta_first: bool = True) -> bytes:
    """A HEIC file's boxes as cameras write them: ftyp, meta (with the image sizes as
    `ispe` properties, here a thumbnail and the primary image), then the pixel data."""
    ftyp = _box(b"ftyp", b"heic" + b"\0\0\0\0" + b"mif1heic")
    ispes = b"".join(_box(b"ispe", struct.pack(">II", w, h), full=True)
                     for w, h in (thumbnail, (width, height)))
    meta = _box(b"meta", _box(b"hdlr", b"\0" * 4 + b"pict" + b"\0" * 13, full=True)
                + _box(b"iprp", _box(b"ipco", ispes) + _box(b"ipma", b"\0" * 8)), full=True)
    mdat = _box(b"mdat", b"\x01" * 200)
    return ftyp + (meta + mdat if meta_first else mdat + meta)
