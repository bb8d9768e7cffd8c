"""Delivery as configured: routes into the outbox, one worker per channel, the MQTT link.

Channels: ``mqtt`` (alerts to the broker), and for each configured phone/chat channel one per
Apprise URL its tags select: ``chat:<name>`` when they select one URL (or none: its messages
then wait until the credentials name one), ``chat:<name>/<schema>-<8 hex>`` each when they
select several (see ``monitor.delivery.chat``), so one dead service never holds back another.
Console and alerts file are local sinks written directly, not through the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import structlog

from monitor.backoff import Backoff
from monitor.closing import AsyncClosing
from monitor.config import DaemonConfig, MqttConfig
from monitor.delivery.chat import NoServices, chat_channels, load_services
from monitor.delivery.commands import (
    CommandGate,
    CommandProcessor,
    CommandSecret,
    CommandTarget,
    topic_base,
)
from monitor.delivery.mqtt import MqttAlertTransport, MqttLink
from monitor.delivery.worker import ChannelPolicy, ChannelWorker
from monitor.domain.alerts import Matcher, Severity
from monitor.domain.routing import Route
from monitor.errors import ConfigError
from monitor.logs import register_secret
from monitor.sinks.journal import Journal
from monitor.snapshot import Snapshot
from monitor.state import Key, state_document
from monitor.tasks import TaskOwner

log = structlog.get_logger(__name__)

MQTT_CHANNEL = "mqtt"
SECONDS_PER_DAY = 86_400.0
CONNECT_WAIT_SECONDS = 5.0


def _read_secret(
    file: Path | None, credential: str | None, field: str, config_path: Path | None
) -> tuple[str, str] | None:
    """A secret from ``<field>_file`` or the systemd credential ``<field>_credential``, with
    the name of the field it came from; errors name the field."""
    where = config_path or Path("config")
    if file is not None:
        path, name = file, f"mqtt.{field}_file"
    elif credential is not None:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ConfigError(
                where,
                f"field mqtt.{field}_credential: $CREDENTIALS_DIRECTORY is not set "
                f"(run under systemd with LoadCredential=, or use {field}_file)",
            )
        path, name = Path(directory) / credential, f"mqtt.{field}_credential"
    else:
        return None
    try:
        secret = path.read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise ConfigError(where, f"field {name}: cannot read {path} ({exc.strerror})") from None
    register_secret(secret)  # masked in every log line from now on
    return secret, name


def read_password(mqtt: MqttConfig, config_path: Path | None) -> str | None:
    """The MQTT password from its file or systemd credential; errors name the field."""
    found = _read_secret(mqtt.password_file, mqtt.password_credential, "password", config_path)
    return None if found is None else found[0]


def read_command_secret(mqtt: MqttConfig, config_path: Path | None) -> CommandSecret | None:
    """The secret MQTT commands are signed with, from its file or systemd credential; None
    when neither is set (every command is then refused)."""
    found = _read_secret(
        mqtt.command_secret_file, mqtt.command_secret_credential, "command_secret", config_path
    )
    if found is None:
        return None
    secret, field = found
    try:
        return CommandSecret(secret)
    except ValueError as exc:
        raise ConfigError(config_path or Path("config"), f"field {field}: {exc}") from None


class Delivery(AsyncClosing):
    """Owns the delivery workers and the MQTT link for one daemon run. Leaving its ``async
    with`` block stops it (the outbox flushed); ``start`` inside the block delivers."""

    def __init__(
        self,
        config: DaemonConfig,
        journal: Journal,
        target: CommandTarget,
        *,
        now: Callable[[], datetime],
        config_path: Path | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.journal = journal
        self.workers: list[ChannelWorker] = []
        self.link: MqttLink | None = None
        self.commands: CommandGate | None = None
        self._clock = wall_clock
        self._tasks: list[asyncio.Task[None]] = []
        self._link_task: asyncio.Task[None] | None = None
        self._state_task: asyncio.Task[None] | None = None
        self._last_state = -float("inf")
        self.states_published = 0
        backoff = Backoff(config.delivery.retry_initial_seconds, config.delivery.retry_max_seconds)
        routes: list[Route] = []
        mqtt = config.mqtt
        if mqtt.enabled:
            secret = read_command_secret(mqtt, config_path)
            if secret is None:
                log.info("mqtt_commands_off", reason="no command secret configured")
            self.commands = CommandGate(
                CommandProcessor(target, now),
                secret,
                topic_base=topic_base(mqtt.prefix, config.instance),
                wall_clock=wall_clock,
            )
            worker_box: list[ChannelWorker] = []

            def reconnected() -> None:
                journal.outbox.retry_now(MQTT_CHANNEL)
                for w in worker_box:
                    w.wake()

            self.link = MqttLink(
                mqtt,
                instance=config.instance,
                password=read_password(mqtt, config_path),
                on_command=self.commands,
                on_connect=reconnected,
            )
            routes.append(
                Route(
                    MQTT_CHANNEL,
                    frozenset(Severity(s) for s in mqtt.severities),
                    send_resolved=mqtt.send_resolved,
                )
            )
            worker = ChannelWorker(
                MQTT_CHANNEL,
                journal.outbox,
                MqttAlertTransport(self.link),
                ChannelPolicy(backoff=backoff),
                wall_clock=wall_clock,
            )
            worker_box.append(worker)
            self.workers.append(worker)
        if config.notify is not None:
            try:
                services = load_services(config.notify.credentials)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    config_path or config.notify.credentials, f"field notify.credentials: {exc}"
                ) from None
            for channel in config.notify.channels:
                policy = ChannelPolicy(
                    group_window_seconds=channel.group_window_seconds,
                    max_group=channel.max_group,
                    min_interval_seconds=channel.min_interval_seconds,
                    backoff=backoff,
                )
                for name, transport in chat_channels(
                    channel.name,
                    services,
                    channel.tags,
                    timeout=channel.timeout_seconds,
                    credentials=config.notify.credentials,
                ):
                    if isinstance(transport, NoServices):
                        log.warning(
                            "chat_channel_without_urls", channel=name, error=transport.error
                        )
                    routes.append(
                        Route(
                            name,
                            frozenset(Severity(s) for s in channel.severities),
                            tuple(Matcher(k, v) for k, v in sorted(channel.match.items())),
                            send_resolved=channel.send_resolved,
                        )
                    )
                    self.workers.append(
                        ChannelWorker(
                            name, journal.outbox, transport, policy, wall_clock=wall_clock
                        )
                    )
        journal.routes = tuple(routes)
        journal.on_enqueue(self._wake)

    def _wake(self) -> None:
        for worker in self.workers:
            worker.wake()

    async def close(self) -> None:
        """Stops delivery (``stop``): what leaving the run's context does."""
        await self.stop()

    async def start(self, tasks: TaskOwner) -> None:
        """Prunes old delivered rows, connects, and starts delivering (backlog first)."""
        horizon = self._clock() - self.config.delivery.prune_delivered_after_days * SECONDS_PER_DAY
        pruned = self.journal.outbox.prune(horizon)
        for worker in self.workers:
            backlog = worker.outbox.backlog(worker.channel)
            if backlog.messages:
                log.info("outbox_backlog", channel=worker.channel, messages=backlog.messages)
        delivering = {w.channel for w in self.workers}
        for channel in self.journal.outbox.channels():
            left = 0 if channel in delivering else self.journal.outbox.backlog(channel).messages
            if left:  # e.g. a chat channel whose URLs changed: its outbox name did too
                log.warning(
                    "outbox_orphaned",
                    channel=channel,
                    messages=left,
                    note="no configured channel delivers it",
                )
        if pruned:
            log.info("outbox_pruned", rows=pruned)
        if self.link is not None:
            self._link_task = tasks.start(self.link.run(), name="mqtt-link")
            # A broker that is down does not stop the run: its messages wait in the outbox.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CONNECT_WAIT_SECONDS):
                    await self.link.wait_connected()
        self._tasks = [tasks.start(w.run(), name=f"deliver-{w.channel}") for w in self.workers]

    def offer_state(self, snapshot: Snapshot, firing: list[Key]) -> None:
        """Publishes the retained book state, at most once per interval, never blocking."""
        link = self.link
        if link is None or not link.connected:
            return
        now = self._clock()
        busy = self._state_task is not None and not self._state_task.done()
        if busy or now - self._last_state < self.config.mqtt.state_interval_seconds:
            return
        self._last_state = now
        document = state_document(snapshot, firing, self.config.instance)
        payload = json.dumps(document, sort_keys=True).encode()
        self._state_task = asyncio.create_task(self._publish_state(link, payload))

    async def _publish_state(self, link: MqttLink, payload: bytes) -> None:
        try:
            await link.publish(link.state_topic, payload, retain=True)
            self.states_published += 1
        except Exception as exc:  # noqa: BLE001 - the next interval tries again
            log.debug("state_not_published", error=str(exc))

    async def stop(self) -> bool:
        """Stops the workers, flushes what is left within the configured time, then says
        ``offline`` and disconnects. True when nothing was left undelivered.

        The flush time bounds everything before ``offline``: the attempts in progress at the
        stop, the flush and the last book state. An attempt still running when it is up is
        cancelled (a chat send's thread is abandoned), its messages kept for the next start."""
        loop = asyncio.get_running_loop()
        timeout = self.config.delivery.shutdown_flush_seconds
        deadline = loop.time() + timeout
        for worker in self.workers:
            worker.stop()
        if self._tasks:
            _done, running = await asyncio.wait(self._tasks, timeout=timeout)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        left = max(deadline - loop.time(), 0.0)
        # A worker whose delivery raised (the failure that stopped the run) is not drained:
        # its messages stay in the outbox for the next start.
        results = await asyncio.gather(
            *(w.drain(left) for w in self.workers), return_exceptions=True
        )
        drained = [result is True for result in results]
        for worker, done, result in zip(self.workers, drained, results, strict=True):
            if isinstance(result, BaseException):
                log.error("outbox_drain_failed", channel=worker.channel, error=repr(result))
            if not done:
                log.warning(
                    "outbox_not_flushed",
                    channel=worker.channel,
                    messages=worker.outbox.backlog(worker.channel).messages,
                    note="delivered at the next start",
                )
        if self._state_task is not None:
            # The last book state, best effort, within what is left of the flush time: a
            # publish caught by a broker going away waits for its own timeout otherwise.
            left = max(deadline - loop.time(), 0.0)
            await asyncio.wait((self._state_task,), timeout=left)
            self._state_task.cancel()
            await asyncio.gather(self._state_task, return_exceptions=True)
        if self.link is not None:
            await self.link.close(self._link_task)
        return all(drained)
