"""Geometry of the server-drawn SVG charts (no chart library)."""

from __future__ import annotations

from typing import Any

import structlog

log = structlog.get_logger(__name__)

def bars(groups: list[Any], label_of: Any, top: int | None = None,
         width: int = 560, row: int = 24) -> dict[str, Any]:
    """Geometry of a horizontal SVG bar chart (server-side, no chart library)."""
    rows = sorted(groups, key=lambda g: -g.count)[:top] if top else list(groups)
    peak = max((g.count for g in rows), default=0) or 1
    label_w, plot_w = 190, width - 190 - 50
    out = []
    for n, g in enumerate(rows):
        w = round(plot_w * g.count / peak, 1)
        out.append({"y": n * row, "w": max(w, 1.0), "count": g.count, "label": label_of(g),
                    "key": g.key,
                    "tx": label_w + max(w, 1.0) + 6})
    return {"rows": out, "height": max(len(out), 1) * row, "width": width,
            "label_w": label_w, "row": row}


def hour_columns(groups: list[Any], width: int = 600, height: int = 170) -> dict[str, Any]:
    """Geometry of a 24-column SVG chart of incidents by hour of day (16 px on top for the
    value labels, 20 px below for the hours)."""
    counts = {int(g.key): g.count for g in groups if g.key is not None}
    peak = max(counts.values(), default=0) or 1
    col = width / 24
    cols = []
    for hour in range(24):
        c = counts.get(hour, 0)
        h = round((height - 36) * c / peak, 1)
        cols.append({"x": round(hour * col + 2, 1), "w": round(col - 4, 1),
                     "y": round(height - 20 - h, 1), "h": h, "count": c, "hour": hour,
                     "lx": round(hour * col + col / 2, 1)})
    return {"cols": cols, "width": width, "height": height}


