"""structlog set-up: readable lines on a terminal, JSON lines otherwise (journald, files).

Logs go to stderr so that stdout carries only alerts and the run summary (journald records
both streams of a service); the format follows stdout, so an interactive run reads well and a
service or pipe gets JSON. The standard library's loggers (ib_async, aiomqtt, Apprise) are
routed through the same processors, so every line has the same shape.

No secret is ever written: values of keys that name a secret (password, token, secret,
credential, api key) are masked, and every secret the monitor reads (the MQTT password, the
passwords and tokens of the Apprise URLs) is registered with ``register_secret`` and
replaced wherever it appears in a line, in our events and third-party messages alike.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog

MASK = "***"
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|credential|api_?key", re.IGNORECASE)
_MIN_SECRET_LENGTH = 4  # shorter strings would mask ordinary words
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Masks ``value`` wherever it appears in a log line from now on."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _secrets.add(value)


_TOKEN_LENGTH = 16  # an Apprise URL's host or path segment this long is a token


def register_url_secrets(urls: Iterable[str]) -> None:
    """The password, and the tokens, of service URLs: Apprise puts bot tokens and webhook
    keys in the host and path (``tgram://TOKEN/CHAT``, ``discord://ID/TOKEN``); every host
    or path segment of 16 characters or more is taken as one."""
    for url in urls:
        parts = urlsplit(url)
        register_secret(unquote(parts.password or ""))
        host = parts.netloc.rpartition("@")[2]  # with a port-like suffix: tgram's token has one
        for piece in [host, *parts.path.split("/")]:
            if len(piece) >= _TOKEN_LENGTH:
                register_secret(unquote(piece))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: MASK if _SECRET_KEY.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: masks secret-named keys and registered secrets."""
    for key in list(event):
        event[key] = MASK if _SECRET_KEY.search(key) else _scrub(event[key])
    return event


def configure(level: str = "info") -> None:
    renderer: structlog.typing.Processor
    if sys.stdout.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        # Not cached: the logger looks up sys.stderr when it is made, so a replaced stream
        # (a test harness, a re-opened terminal) is never written after it was closed.
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through the standard library: same processors, same stream.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(previous)  # configured again (tests, a second run in-process)
    root.addHandler(handler)
    # Their chatter (per-message debug) stays out unless asked for.
    root.setLevel(max(numeric, logging.INFO) if numeric > logging.DEBUG else numeric)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current sys.stderr (looked up per record, like the structlog side)."""

    def __init__(self) -> None:
        super().__init__()

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)
