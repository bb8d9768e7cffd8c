"""Phone and chat delivery through Apprise: the only module that imports it.

The services and their secrets are Apprise URLs in a credentials file in Apprise's own
configuration format (YAML or text, with tags); a channel sends to the URLs carrying its
tags, each URL on its own (its own outbox channel, order and backoff: a dead service never
holds back or repeats a message to another). A URL is named by its schema and the first 8
hex digits of the SHA-256 of the URL (``tgram-3f2a9c01``, see ``channel_targets``): stable
while the URL is unchanged, and no secret in it.

Apprise sends synchronously, so each send runs in a daemon thread of its own and the event
loop awaits its result under the channel's timeout. A send past its timeout fails and its
thread is abandoned, never joined: a host that trickles its answer a byte at a time cannot
hold up the loop, the shutdown or the interpreter's exit. At most ``MAX_ABANDONED_SENDS``
abandoned threads per URL may still be running; while they are, the URL's sends fail at
once, so a dead host cannot pile up threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import apprise

from monitor.delivery import text
from monitor.delivery.worker import DeliveryError, Transport
from monitor.logs import register_secret, register_url_secrets
from monitor.sinks.outbox import OutboxMessage

DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_ABANDONED_SENDS = 2  # per URL: threads of timed-out sends that may still be running
# Apprise's own socket timeouts (``cto``/``rto``, 4 s by default) are capped at the send's
# timeout plus this, so a send to a host that went silent ends by itself just after it was
# abandoned; the enforced timeout fires first. A trickling host resets a read timeout with
# every byte: only abandoning the thread bounds it.
SOCKET_TIMEOUT_SLACK_SECONDS = 1.0
URL_ID_HEX_DIGITS = 8

_NOTIFY_TYPES = {
    "critical": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
    "info": apprise.NotifyType.INFO,
}
# A service URL in either of Apprise's formats: ``[tags=]schema://...`` lines, or YAML
# ``urls:`` entries (a plain string, or a key ending in ``:`` with options below it).
_URL = re.compile(r"\b[a-z][a-z0-9+.-]{0,31}://[^\s\"'<>]+", re.IGNORECASE)
# A YAML option under a URL that holds a secret: ``pass: ...``, ``token: ...``, ``apikey: ...``
_SECRET_OPTION = re.compile(
    r"^[\s-]*[\"']?[a-z_]*(?:pass|secret|token|key)[a-z_]*[\"']?\s*:[ \t]*[\"']?"
    r"(?P<value>[^\s\"'#]+)",
    re.IGNORECASE | re.MULTILINE,
)


def credential_urls(content: str) -> list[str]:
    """The service URLs written in a credentials file's text, YAML or text format."""
    return [m.group(0).rstrip(":,") for m in _URL.finditer(content)]


def _register_secrets(content: str) -> None:
    register_url_secrets(credential_urls(content))
    for option in _SECRET_OPTION.finditer(content):
        register_secret(option.group("value"))


def _asset() -> apprise.AppriseAsset:
    # Apprise 2 runs a send with a service timeout in its own thread pool, whose threads are
    # joined at interpreter exit; without one it sends in the calling thread, ours.
    if hasattr(apprise.AppriseAsset, "_service_timeout"):
        return apprise.AppriseAsset(async_mode=False, service_timeout=0)
    return apprise.AppriseAsset(async_mode=False)


def load_services(credentials: Path) -> apprise.Apprise:
    """The Apprise URLs of a credentials file; a clear error when it has none.

    The secrets in the file are registered for masking before Apprise reads it: Apprise logs
    the lines it cannot parse (and, at debug level, the URLs it loads)."""
    if not credentials.is_file():
        raise FileNotFoundError(f"{credentials}: Apprise credentials file not found")
    _register_secrets(credentials.read_text(encoding="utf-8", errors="replace"))
    asset = _asset()
    config = apprise.AppriseConfig(asset=asset)
    config.add(str(credentials))
    services = apprise.Apprise(asset=asset)
    services.add(config)
    if len(services) == 0:
        raise ValueError(f"{credentials}: no valid Apprise URL in the file")
    # As Apprise wrote them: options given as YAML keys are in the URL now.
    register_url_secrets(str(server.url()) for server in services)  # type: ignore[no-untyped-call]
    return services


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """One Apprise URL of a channel, and its name (``<schema>-<8 hex>``, no secret)."""

    key: str
    server: apprise.NotifyBase


def url_key(url: str) -> str:
    """``<schema>-<first 8 hex digits of the URL's SHA-256>``: the same for the same URL."""
    schema = url.partition("://")[0].lower() or "url"
    digest = hashlib.sha256(url.encode()).hexdigest()[:URL_ID_HEX_DIGITS]
    return f"{schema}-{digest}"


def channel_targets(services: apprise.Apprise, tags: Sequence[str]) -> list[ChatTarget]:
    """The URLs carrying any of ``tags`` (every URL when empty), in file order; a URL
    written twice is sent to once.

    A URL is keyed as Apprise writes it back, without its ``?options``: Apprise adds the
    defaults of its options there, and a new Apprise version may add more. Two URLs of the
    channel that differ only in their options are keyed with them."""
    targets: dict[str, ChatTarget] = {}
    urls: dict[str, str] = {}
    for server in services.find(tag=list(tags) or "all"):
        url = str(server.url(privacy=False))  # type: ignore[no-untyped-call]
        key = url_key(url.partition("?")[0])
        if urls.get(key, url) != url:
            key = url_key(url)
        if key not in targets:
            targets[key], urls[key] = ChatTarget(key, server), url
    return list(targets.values())


def _settle(done: asyncio.Future[bool], outcome: bool | BaseException) -> None:
    if done.done():  # abandoned: nobody waits for it any more
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


class ChatTransport:
    """Sends a message, or a group as one message, to one Apprise URL, within ``timeout``
    seconds."""

    def __init__(
        self,
        target: ChatTarget,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_abandoned: int = MAX_ABANDONED_SENDS,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.max_abandoned = max_abandoned
        self._abandoned: list[threading.Thread] = []
        # A copy: another channel may send to the same URL with another timeout.
        server = copy.copy(target.server)
        cap = timeout + SOCKET_TIMEOUT_SLACK_SECONDS
        for name in ("socket_connect_timeout", "socket_read_timeout"):
            current = getattr(server, name, None)
            if isinstance(current, int | float) and current > cap:
                setattr(server, name, cap)
        self._services = apprise.Apprise(asset=server.asset)
        self._services.add(server)

    @property
    def abandoned(self) -> int:
        """Threads of timed-out sends to this URL that are still running."""
        self._abandoned = [t for t in self._abandoned if t.is_alive()]
        return len(self._abandoned)

    async def send(self, messages: Sequence[OutboxMessage], group_id: str) -> None:
        key = self.target.key
        if self.abandoned >= self.max_abandoned:
            raise DeliveryError(
                f"{key}: {self.abandoned} earlier sends, abandoned after {self.timeout:g} s, "
                "are still running; no new attempt until one ends"
            )
        records = [m.record for m in messages]
        severities = {str(r["severity"]) for r in records if r["state"] == "firing"}
        worst = next((s for s in ("critical", "warning", "info") if s in severities), None)
        notify_type = _NOTIFY_TYPES[worst] if worst else apprise.NotifyType.SUCCESS
        body, title = text.body(records, group_id), text.title(records)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()

        def deliver() -> None:
            outcome: bool | BaseException
            try:
                sent = self._services.notify(body=body, title=title, notify_type=notify_type)
                outcome = bool(sent)
            except Exception as exc:  # noqa: BLE001 - handed to the loop, which reports it
                # Its class only: the text of a plugin's error may quote the URL, and the
                # error is kept in the outbox, which the log masking does not cover.
                outcome = DeliveryError(f"{key}: Apprise raised {type(exc).__name__}")
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, done, outcome)

        thread = threading.Thread(target=deliver, name=f"chat-send-{key}", daemon=True)
        thread.start()
        try:
            async with asyncio.timeout(self.timeout):
                ok = await done
        except TimeoutError:
            raise DeliveryError(f"{key}: timed out after {self.timeout:g} s") from None
        finally:
            if not done.done() or done.cancelled():  # timed out, or the worker was cancelled
                self._abandoned.append(thread)
        if not ok:
            raise DeliveryError(f"{key}: not delivered (Apprise logged why)")


def chat_channels(
    name: str,
    services: apprise.Apprise,
    tags: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    credentials: Path,
) -> list[tuple[str, Transport]]:
    """The outbox channels of the phone/chat channel ``name``, one per URL its tags select,
    with their transports: ``chat:<name>`` for a single URL (or for none: its sends fail
    until the credentials name one), ``chat:<name>/<schema>-<8 hex>`` each for several."""
    base = f"chat:{name}"
    targets = channel_targets(services, tags)
    if not targets:
        return [(base, NoServices(credentials, tags))]
    if len(targets) == 1:
        return [(base, ChatTransport(targets[0], timeout=timeout))]
    return [(f"{base}/{t.key}", ChatTransport(t, timeout=timeout)) for t in targets]


class NoServices:
    """The transport of a channel whose tags match no URL: every send fails, so the channel's
    messages wait in the outbox, counted in its backlog, until the credentials name one."""

    def __init__(self, credentials: Path, tags: Sequence[str]) -> None:
        self.error = f"no URL in {credentials} carries any of the tags {list(tags)}"

    async def send(self, messages: Sequence[OutboxMessage], group_id: str) -> None:  # noqa: ARG002 - the Transport protocol
        raise DeliveryError(self.error)
