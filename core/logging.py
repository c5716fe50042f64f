"""Structured logging for every process (structlog over the standard library)."""

from __future__ import annotations

import logging
import sys

import structlog
import structlog.typing

from core.settings import Settings

_configured = False


def configure_logging(settings: Settings | None = None) -> None:
    """structlog with contextvars (request id, incident id); JSON when CANHBAO_LOG_JSON.
    Idempotent: the first call in a process wins."""
    global _configured
    if _configured:
        return
    _configured = True
    level = getattr(logging, (settings.log_level if settings else "INFO").upper(), logging.INFO)
    as_json = bool(settings and settings.log_json)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer = (structlog.processors.JSONRenderer(ensure_ascii=False) if as_json
                else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
        foreign_pre_chain=shared,
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for noisy in ("temporalio.activity", "temporalio.workflow"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))
