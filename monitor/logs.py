"""structlog set-up: readable lines on a terminal, JSON lines otherwise (journald, files).

Where logs go (``--log-stream``): under systemd (``JOURNAL_STREAM`` set, so both streams are
the journal) to stdout, as JSON lines, and the console sink writes each alert transition as
one more JSON line (event ``alert``) among them; elsewhere to stderr, so that stdout carries
only the alerts and the run summary a person reads. The format follows the stream: a
terminal gets readable lines, anything else JSON. The standard library's loggers (ib_async,
aiomqtt, Apprise) are routed through the same processors, so every line has the same shape.

No secret is ever written: values of keys that name a secret (password, token, secret,
credential, api key) are masked, and every secret the monitor reads (the MQTT password, the
passwords and tokens of the Apprise URLs) is registered with ``register_secret`` and
replaced wherever it appears in a line, in our events and third-party messages alike.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO
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


Stream = Literal["auto", "stdout", "stderr"]
_to_stdout = False


def _chosen(stream: Stream) -> bool:
    """True for stdout: asked for, or ``auto`` under systemd (journald reads both streams)."""
    return stream == "stdout" or (stream == "auto" and bool(os.environ.get("JOURNAL_STREAM")))


def to_stdout() -> bool:
    """Whether log lines go to stdout (then alerts on the console are JSON lines too)."""
    return _to_stdout


def _stream() -> TextIO:
    # Looked up per line: a replaced stream (a test harness, a re-opened terminal) is never
    # written after it was closed.
    return sys.stdout if _to_stdout else sys.stderr


def configure(level: str = "info", stream: Stream = "auto") -> None:
    global _to_stdout  # noqa: PLW0603 - one logging set-up per process
    _to_stdout = _chosen(stream)
    renderer: structlog.typing.Processor
    if _stream().isatty():
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
        logger_factory=_logger,
        # Not cached: the logger looks its stream up when it is made (see _stream).
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
    handler = _StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _StreamHandler)]:
        root.removeHandler(previous)  # configured again (tests, a second run in-process)
    root.addHandler(handler)
    # Their chatter (per-message debug) stays out unless asked for.
    root.setLevel(max(numeric, logging.INFO) if numeric > logging.DEBUG else numeric)


class _StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current log stream (looked up per record, like the structlog side)."""

    def __init__(self) -> None:
        super().__init__()

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = _stream()
        super().emit(record)


def _logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(_stream())


def json_line(event: str, level: str, logger: str, fields: Mapping[str, object]) -> str:
    """One line in the shape of the JSON log lines, written whatever the log level: for what
    must reach the stream (alerts, the run summary) when it is shared with the logs."""
    record: dict[str, object] = {
        "event": event,
        "level": level,
        "logger": logger,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        **fields,
    }
    return json.dumps(record, sort_keys=True, ensure_ascii=False)
