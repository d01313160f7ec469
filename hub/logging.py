"""Structured logs that follow the document: correlation ids bound once, carried by every line."""

from __future__ import annotations

import logging
import sys

import structlog

from hub.settings import Settings


def configure_logging(settings: Settings) -> None:
    """Configure structlog once per process: context variables first, JSON in production."""
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries speak only when something is wrong; pika's connection failures are
    # reported by the hub itself, in one line that says how to fix them.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("pika").setLevel(logging.CRITICAL)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger named after its module."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
