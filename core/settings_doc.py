"""docs/configuration.md's table of settings, rendered from core/settings.Settings.

The table lies between two marker lines in that file; the prose around it is written by
hand. `python -m core.settings_doc` (`make docs`) rewrites the table, `--check` only says
whether it is out of date (tests/deploy/test_configuration_doc.py fails when it is). Each
row is one field: its environment variable, its default, its type and bounds, and its
`description`. The section headings are the `# --- … ---` comments in the Settings class.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from core.settings import ROOT, Settings

DOC = ROOT / "docs" / "configuration.md"
BEGIN = "<!-- settings table: generated from core/settings.py by `make docs`; do not edit -->"
END = "<!-- end of settings table -->"
_SECTION = re.compile(r"^\s+# --- (.+?) ---\s*$")
_FIELD = re.compile(r"^\s+(\w+): ")


def sections() -> list[tuple[str, list[str]]]:
    """(heading, field names) in the order the class declares them."""
    out: list[tuple[str, list[str]]] = [("general", [])]
    for line in inspect.getsource(Settings).splitlines():
        if m := _SECTION.match(line):
            out.append((m.group(1), []))
        elif (m := _FIELD.match(line)) and m.group(1) in Settings.model_fields:
            out[-1][1].append(m.group(1))
    return [(heading, names) for heading, names in out if names]


def _show(value: Any) -> str:
    """A default as one would write it in the environment; paths relative to the checkout."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, (dict, list)):
        return f"`{json.dumps(value)}`"
    if isinstance(value, Path) or (isinstance(value, str) and value.startswith(str(ROOT.parent))):
        value = os.path.relpath(value, ROOT)
    text = str(value)
    return f"`{text}`" if text else "empty"


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True, validated_data={})
    return "" if value is PydanticUndefined else _show(value)


def _kind(field: FieldInfo) -> str:
    name = getattr(field.annotation, "__name__", None) or str(field.annotation)
    name = {"dict": "JSON object", "list": "JSON list", "Path": "path"}.get(name, name)
    name = name.replace("pathlib.", "").replace("Path | None", "path").replace(" | None", "")
    bounds = []
    for rule in field.metadata:
        if isinstance(rule, Ge):
            bounds.append(f"≥ {rule.ge}")
        elif isinstance(rule, Gt):
            bounds.append(f"> {rule.gt}")
        elif isinstance(rule, Le):
            bounds.append(f"≤ {rule.le}")
        elif isinstance(rule, Lt):
            bounds.append(f"< {rule.lt}")
    return ", ".join([name, *bounds])


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_table() -> str:
    """The generated part of docs/configuration.md, between and including the markers."""
    lines = [BEGIN]
    for heading, names in sections():
        lines += ["", f"### {heading[0].upper()}{heading[1:]}", "",
                  "| variable | default | type | meaning |", "|---|---|---|---|"]
        for name in names:
            field = Settings.model_fields[name]
            lines.append(f"| `{field.alias}` | {_cell(_default(field))} | {_kind(field)} "
                         f"| {_cell(field.description or '')} |")
    lines += ["", END]
    return "\n".join(lines)


def render(current: str) -> str:
    """`current` (the file's text) with its settings table replaced by a fresh one."""
    head, sep, rest = current.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise ValueError(f"{DOC} lacks the marker lines {BEGIN!r} … {END!r}")
    return head + render_table() + tail


def main(argv: list[str]) -> int:
    current = DOC.read_text(encoding="utf-8")
    fresh = render(current)
    if "--check" in argv:
        if fresh != current:
            sys.stderr.write(f"{DOC} is out of date: run `make docs`\n")
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
