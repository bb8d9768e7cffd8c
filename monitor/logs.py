"""structlog set-up: readable lines on a terminal, JSON lines otherwise (journald, files).

Logs go to stderr so that stdout carries only alerts and the run summary; the format follows
stdout, so an interactive run reads well and a service or pipe gets JSON.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "info") -> None:
    renderer: structlog.typing.Processor
    if sys.stdout.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_logger,
        # Not cached: the logger looks up sys.stderr when it is made, so a replaced stream
        # (a test harness, a re-opened terminal) is never written after it was closed.
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)
