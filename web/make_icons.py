"""Draw the app's PNG icons (192, 512, maskable 512) with the standard library only.

The same design as web/static/icons/icon.svg: a white shield with an exclamation mark on
red. Run `python -m web.make_icons` after changing the design; the PNGs are committed.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

RED = (183, 28, 28)
WHITE = (255, 255, 255)
OUT = Path(__file__).resolve().parent / "static" / "icons"


def _bezier(p0, p1, p2, p3, n=24):
    pts = []
    for i in range(1, n + 1):
        t = i / n
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
        pts.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
                    a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    return pts


SHIELD: list[tuple[float, float]] = [(256, 72), (104, 138), (104, 240)]
SHIELD += _bezier((104, 240), (104, 334), (168, 422), (256, 446))
SHIELD += _bezier((256, 446), (344, 422), (408, 334), (408, 240))
SHIELD += [(408, 138)]


def _inside_polygon(x: float, y: float, poly: list[tuple[float, float]]) -> bool:
    inside = False
    j = len(poly) - 1
    for i in range(len(poly)):
        xi, yi = poly[i]
        xj, yj = poly[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _in_round_rect(x, y, x0, y0, x1, y1, r):
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _colour(x: float, y: float, maskable: bool) -> tuple[int, int, int, int]:
    """Colour at (x, y) in the 512 design space."""
    if maskable:  # full bleed; content within the central 80 % safe zone
        x, y = 256 + (x - 256) / 0.78, 256 + (y - 256) / 0.78
    elif not _in_round_rect(x, y, 0, 0, 512, 512, 96):
        return (0, 0, 0, 0)
    if _inside_polygon(x, y, SHIELD):
        if _in_round_rect(x, y, 232, 150, 280, 320, 24) or (x - 256) ** 2 + (y - 372) ** 2 <= 784:
            return (*RED, 255)
        return (*WHITE, 255)
    return (*RED, 255)


def render(size: int, maskable: bool = False, ss: int = 3) -> bytes:
    rows = []
    scale = 512 / size
    for py in range(size):
        row = bytearray([0])
        for px in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(ss):
                for sx in range(ss):
                    c = _colour((px + (sx + 0.5) / ss) * scale, (py + (sy + 0.5) / ss) * scale,
                                maskable)
                    for k in range(4):
                        acc[k] += c[k] * (c[3] if k < 3 else 255)
            alpha = acc[3] / 255
            n = ss * ss
            if alpha:
                row += bytes(round(acc[k] / alpha) for k in range(3)) + bytes([round(alpha / n)])
            else:
                row += b"\0\0\0\0"
        rows.append(bytes(row))
    return _png(size, size, b"".join(rows))


def _png(w: int, h: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "icon-192.png").write_bytes(render(192))
    (OUT / "icon-512.png").write_bytes(render(512, ss=2))
    (OUT / "icon-maskable-512.png").write_bytes(render(512, maskable=True, ss=2))


if __name__ == "__main__":
    main()
