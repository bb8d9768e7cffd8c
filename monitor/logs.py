"""structlog set-up: readable lines on a terminal, JSON lines otherwise (journald, files).

Where logs go (``--log-stream``): under systemd (``JOURNAL_STREAM`` set, so both streams are
the journal) to stdout, as JSON lines, and the console sink writes each alert transition as
one more JSON line (event ``alert``) among them; elsewhere to stderr, so that stdout carries
only the alerts and the run summary a person reads. The format follows the stream: a
terminal gets readable lines, anything else JSON. The standard library's loggers (ib_async,
aiomqtt, Apprise) are routed through the same processors, so every line has the same shape,
the same masking and the same length limits, at every level.

No secret is ever written. Masking runs on every line before rendering, in our events and
third-party messages alike, by these rules:

- the value of a key that names a secret (password, token, secret, credential, api key) is
  masked whole;
- in any URL, the user and password of ``scheme://user:pass@host`` are masked, registered
  or not;
- every secret the monitor reads is registered: ``register_secret`` for a password (the MQTT
  password), ``register_url_secrets`` for service URLs (the Apprise credentials). A
  registered URL is replaced, wherever it appears, by itself with its credential segments
  masked: the user and password, and for a service URL whose host is not a network name
  (``tgram://TOKEN/CHAT``, ``discord://ID/TOKEN``, ``slack://A/B/C``, ``ntfy://TOPIC``) the
  host and every path segment; for a URL with a network host (``json://user:pass@host/path``,
  ``https://hooks.slack.com/services/T0/B0/XYZ``) the path segments that look like tokens
  (with a digit or a symbol, or 16 characters or more), and query values whose key names a
  secret (``?token=``, ``?key=``, ``?auth=``);
- those segments, and registered passwords, are also masked where they appear alone: one
  of 16 characters or more wherever it appears (even inside a longer string, as a bot
  token inside an API path), a shorter one only as a whole word (not inside a longer word
  or number). Nothing shorter than 4 characters is masked alone, nor a user name, host or
  path segment that is a plain word (letters only, under 16 characters: ``admin``,
  ``alerts``, ``api``), nor a network host name or a port: those are masked inside their
  URL only, so a common word in another message stays readable. A password is masked alone
  whatever it looks like.

Every value is capped at ``MAX_VALUE_CHARS`` characters after masking (so a secret at the cut
cannot show half): a longer string, or the repr of another value, keeps its first
``MAX_VALUE_CHARS`` characters and ends with ``…[+N chars]``, N the characters left out. A
traceback (field ``exception``) keeps its last ``MAX_EXCEPTION_CHARS`` characters, where the
error is, after a ``[N chars]…`` marker.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO
from urllib.parse import unquote, urlsplit

import structlog

MASK = "***"
MAX_VALUE_CHARS = 512  # per value of a log line, after masking
MAX_EXCEPTION_CHARS = 8192  # a traceback keeps its end, where the error is
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|credential|api_?key", re.IGNORECASE)
_SECRET_QUERY_KEY = re.compile(r"pass|secret|token|credential|key|auth|sig", re.IGNORECASE)
_MIN_SECRET_LENGTH = 4  # shorter strings would mask ordinary words
_LONG_SECRET_LENGTH = 16  # from this length a secret is masked even inside a longer string
_PLAIN_WORD = re.compile(r"[A-Za-z]+(?:[-_.][A-Za-z]+)*")
_NETWORK_NAME = re.compile(r"(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*\.?")
# The credentials of any URL, registered or not; bounded, so a huge value is scanned once.
_USERINFO = re.compile(r"://([^\s/@:]{0,256})(:[^\s/@]{0,256})?@")
_BIG_INT_BITS = MAX_VALUE_CHARS * 332 // 100  # about MAX_VALUE_CHARS decimal digits

Masker = Callable[[str], str]


class _Registry:
    """The registered secrets, each with what masks it, longest first (a URL before its
    segments). Replaced whole on registration: a line being masked keeps a consistent set."""

    def __init__(self) -> None:
        self.by_secret: dict[str, Masker] = {}
        self.ordered: tuple[tuple[str, Masker], ...] = ()

    def add(self, secret: str, masker: Masker) -> None:
        if secret in self.by_secret:
            return
        self.by_secret = {**self.by_secret, secret: masker}
        self.ordered = tuple(sorted(self.by_secret.items(), key=lambda item: -len(item[0])))


_secrets = _Registry()


def _replacer(secret: str, replacement: str) -> Masker:
    return lambda text: text.replace(secret, replacement)


def _add_alone(value: str) -> None:
    """Masks ``value`` where it appears alone: anywhere when long, as a whole word if short."""
    if len(value) < _MIN_SECRET_LENGTH:
        return
    if len(value) >= _LONG_SECRET_LENGTH:
        _secrets.add(value, _replacer(value, MASK))
        return
    word = re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])")
    _secrets.add(value, lambda text: word.sub(MASK, text))


def register_secret(value: str | None) -> None:
    """Masks ``value`` (a password) in every log line from now on (module docstring)."""
    if value:
        _add_alone(value)


def _is_plain_word(value: str) -> bool:
    return len(value) < _LONG_SECRET_LENGTH and _PLAIN_WORD.fullmatch(value) is not None


def _is_network_host(hostport: str) -> bool:
    """``localhost``, an IP address or a dotted name, with a numeric port if any."""
    if hostport.startswith("["):  # [IPv6]:port
        host, _, port = hostport[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = hostport.partition(":")
    if port and not port.isdigit():
        return False  # tgram's "123456789:AAbb...": the colon is inside the token
    if host.lower() == "localhost" or _NETWORK_NAME.fullmatch(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _url_secrets(url: str) -> tuple[str, set[str]]:
    """``url`` with its credential segments masked, and the segments to mask alone too."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    alone: set[str] = set()
    netloc = hostport
    if at:
        user, colon, password = userinfo.partition(":")
        alone |= {password, unquote(password)}  # a password whatever it looks like
        alone |= {u for u in (user, unquote(user)) if not _is_plain_word(u)}
        netloc = MASK + (":" + MASK if colon else "") + "@" + hostport
    network = _is_network_host(hostport)
    if hostport and not network:  # a service URL: its host is a token, an id or a topic
        netloc = netloc.removesuffix(hostport) + MASK
        alone |= {p for p in (hostport, *hostport.split(":")) if not _is_plain_word(p)}
    segments = []
    for segment in parts.path.split("/"):
        plain = _is_plain_word(unquote(segment))
        secret = bool(segment) and not (network and plain)
        segments.append(MASK if secret else segment)
        if secret and not plain:
            alone |= {segment, unquote(segment)}
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        key, equals, value = pair.partition("=")
        if equals and value and _SECRET_QUERY_KEY.search(unquote(key)):
            pairs.append(f"{key}={MASK}")
            alone |= {v for v in (value, unquote(value)) if not _is_plain_word(v)}
        else:
            pairs.append(pair)
    masked = f"{parts.scheme}:{'//' if url.startswith(parts.scheme + '://') else ''}{netloc}"
    masked += "/".join(segments)
    masked += f"?{'&'.join(pairs)}" if parts.query else ""
    masked += f"#{parts.fragment}" if parts.fragment else ""
    return masked, alone


def register_url_secrets(urls: Iterable[str]) -> None:
    """Masks the credentials of service URLs (the Apprise URLs) in every log line from now
    on: each URL wherever it appears, and its credential segments alone (module docstring)."""
    for url in urls:
        for whole in {url, url.partition("?")[0]}:  # as written, and without its options
            masked, alone = _url_secrets(whole)
            if masked != whole:
                _secrets.add(whole, _replacer(whole, masked))
            for segment in alone:
                _add_alone(segment)


def _hide_userinfo(match: re.Match[str]) -> str:
    return f"://{MASK}{':' + MASK if match.group(2) else ''}@"


def mask(text: str) -> str:
    """``text`` with every registered secret and every URL's user and password masked."""
    for secret, masker in _secrets.ordered:
        if secret in text:
            text = masker(text)
    if "://" in text and "@" in text:
        text = _USERINFO.sub(_hide_userinfo, text)
    return text


def _as_text(value: object) -> str:
    """A value that is not JSON as both renderers would show it (structlog's JSON fallback)."""
    method = getattr(value, "__structlog__", None)
    return str(method()) if callable(method) else repr(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {k: MASK if _SECRET_KEY.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value] if isinstance(value, list) else tuple(map(_scrub, value))
    return mask(_as_text(value))  # an exception, a path, bytes: its text may hold a secret


def redact(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: masks secret-named keys and registered secrets (module docstring).
    Values that are not JSON become the text a renderer would show, masked."""
    for key in list(event):
        event[key] = MASK if _SECRET_KEY.search(key) else _scrub(event[key])
    return event


def _cut(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[+{len(text) - limit} chars]"


def _capped(value: Any) -> Any:
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, int) and not isinstance(value, bool):
        bits = value.bit_length()
        return value if bits <= _BIG_INT_BITS else f"<integer of {bits} bits>"
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, dict):
        return {k: _capped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return (
            [_capped(v) for v in value] if isinstance(value, list) else tuple(map(_capped, value))
        )
    return _cut(_as_text(value))


def cap_lengths(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor, after ``redact``: every value at most ``MAX_VALUE_CHARS``
    characters (a traceback: its last ``MAX_EXCEPTION_CHARS``), with a marker of the cut."""
    for key in list(event):
        value = event[key]
        if key == "exception" and isinstance(value, str) and len(value) > MAX_EXCEPTION_CHARS:
            cut = len(value) - MAX_EXCEPTION_CHARS
            event[key] = f"[{cut} chars]…{value[cut:]}"
        else:
            event[key] = _capped(value)
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
    # Exceptions become text first, so their messages are masked and capped like the rest.
    masked: list[structlog.typing.Processor] = [
        structlog.processors.format_exc_info,
        redact,
        cap_lengths,
        renderer,
    ]
    structlog.configure(
        processors=[*shared, *masked],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_logger,
        # Not cached: the logger looks its stream up when it is made (see _stream).
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through the standard library: same processors, same stream.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *masked],
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
    must reach the stream (alerts, the run summary) when it is shared with the logs; masked
    and capped as they are."""
    record: dict[str, Any] = {
        "event": event,
        "level": level,
        "logger": logger,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        **fields,
    }
    return json.dumps(
        cap_lengths(None, level, redact(None, level, record)), sort_keys=True, ensure_ascii=False
    )
