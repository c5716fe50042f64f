"""The workflow module stays light: the sandbox never loads SQLAlchemy or the activities."""

from __future__ import annotations

import subprocess
import sys

from core.settings import ROOT


def test_workflow_imports_no_database_code() -> None:
    code = (
        "import sys, workflows.incident\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'sqlmodel', 'psycopg', 'aiosqlite') "
        "or m in ('activities.projection', 'activities.geo', 'activities.notify'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
