"""Run alembic migrations from code (the CLI, `make run`, tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from core.settings import ROOT, sync_url


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = sync_url(url)
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
