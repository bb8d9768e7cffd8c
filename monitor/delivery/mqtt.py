"""The MQTT link, on aiomqtt: the only module that imports it.

Topics, under ``<prefix>/<instance>``:
- ``status``: ``online`` / ``offline``, retained, QoS 1; the broker publishes ``offline`` as
  the Last Will when the connection drops, the daemon publishes it on a clean shutdown.
- ``alerts/<severity>``: one JSON alert record per message, QoS 1, not retained.
- ``state``: the book summary in JSON, retained, at most once per configured interval.
- ``cmd/<command>`` (subscribed) and ``reply``: signed commands from a phone, answered by
  a ``CommandGate``; see docs/delivery.md. Who may publish or read each topic is the
  broker's ACL (deploy/mosquitto/): MQTT tells a subscriber nothing about the sender.

The connection is kept up by ``run``: it reconnects with capped, jittered backoff under a
stable client id and a persistent session, so the broker keeps the command subscription
while the daemon is away.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiomqtt
import structlog

from monitor.backoff import Backoff
from monitor.config import MqttConfig
from monitor.delivery.commands import command_topic, topic_base
from monitor.delivery.worker import DeliveryError
from monitor.sinks.outbox import OutboxMessage

log = structlog.get_logger(__name__)

CommandHandler = Callable[[str, bytes], Awaitable[dict[str, Any]]]


PUBLISH_TIMEOUT_SECONDS = 10.0  # a publish not acknowledged by then has failed
RECONNECT_BACKOFF = Backoff(0.5, 30.0)


class MqttLink:
    """A broker connection that stays up; publishes wait for the broker's acknowledgement."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        instance: str,
        password: str | None = None,
        on_command: CommandHandler | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        """``config`` is the ``[mqtt]`` section as it is; topics are under its prefix and the
        daemon's ``instance``; ``password`` is the one its file or credential holds."""
        self.config = config
        self.base = topic_base(config.prefix, instance)
        self.client_id = config.client_id or f"condor-monitor-{instance}"
        self._password = password  # never logged
        self.on_command = on_command
        self.on_connect = on_connect
        self.status_topic = f"{self.base}/status"
        self.state_topic = f"{self.base}/state"
        self.reply_topic = f"{self.base}/reply"
        self.command_filter = command_topic(self.base, "+")
        self.connects = 0  # successful connections, for metrics
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography

    def alerts_topic(self, severity: str) -> str:
        return f"{self.base}/alerts/{severity}"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _client_for(self) -> aiomqtt.Client:
        s = self.config
        context = None
        if s.tls or s.tls_ca_file is not None:
            context = ssl.create_default_context(
                cafile=str(s.tls_ca_file) if s.tls_ca_file else None
            )
            if s.tls_cert_file is not None:
                context.load_cert_chain(
                    str(s.tls_cert_file), str(s.tls_key_file) if s.tls_key_file else None
                )
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=self._password,
            identifier=self.client_id,
            clean_session=False,
            keepalive=s.keepalive_seconds,
            will=aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
            tls_context=context,
            timeout=PUBLISH_TIMEOUT_SECONDS,
        )

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def run(self) -> None:
        """Connects, announces ``online``, serves commands; reconnects when the link drops.

        A lost link or a refused connection is a warning once (and again when the error
        changes); the retries that fail the same way are logged at debug level, so a broker
        down for an hour does not fill the journal. ``mqtt_connected`` says after how many."""
        failures = 0
        warned: str | None = None  # the error last logged as a warning, until a connection
        while True:
            try:
                async with self._client_for() as client:
                    self._client = client
                    await client.publish(self.status_topic, b"online", qos=1, retain=True)
                    await client.subscribe(self.command_filter, qos=1)
                    self._connected.set()
                    self.connects += 1
                    log.info(
                        "mqtt_connected",
                        host=self.config.host,
                        port=self.config.port,
                        failed_attempts=failures,
                    )
                    failures = 0
                    warned = None
                    if self.on_connect is not None:
                        self.on_connect()
                    async for message in client.messages:
                        await self._command(client, str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                self._connected.clear()
                self._client = None
                failures += 1
                delay = RECONNECT_BACKOFF.delay(failures, self._rng)
                error = str(exc)
                if error != warned:
                    log.warning("mqtt_disconnected", error=error, retry_in_seconds=round(delay, 3))
                    warned = error
                else:
                    log.debug(
                        "mqtt_retry_failed",
                        error=error,
                        attempt=failures,
                        retry_in_seconds=round(delay, 3),
                    )
                await asyncio.sleep(delay)
            finally:
                self._connected.clear()
                self._client = None

    async def _command(self, client: aiomqtt.Client, topic: str, payload: object) -> None:
        if self.on_command is None:
            return
        name = topic.rsplit("/", 1)[-1]
        body = payload if isinstance(payload, bytes) else str(payload or "").encode()
        reply = await self.on_command(name, body)
        await client.publish(self.reply_topic, json.dumps(reply).encode(), qos=1)

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """QoS 1: returns once the broker has the message; DeliveryError otherwise."""
        client = self._client
        if client is None or not self._connected.is_set():
            raise DeliveryError("not connected to the MQTT broker")
        try:
            await client.publish(
                topic, payload, qos=1, retain=retain, timeout=PUBLISH_TIMEOUT_SECONDS
            )
        except aiomqtt.MqttError as exc:
            raise DeliveryError(f"MQTT publish failed: {exc}") from exc

    async def close(self, run_task: asyncio.Task[None] | None) -> None:
        """Clean shutdown: ``offline`` (retained), then a normal disconnect (no Will)."""
        if self._client is not None and self._connected.is_set():
            try:
                await self.publish(self.status_topic, b"offline", retain=True)
            except DeliveryError as exc:
                log.warning("mqtt_offline_not_published", error=str(exc))
        if run_task is not None:
            run_task.cancel()
            await asyncio.gather(run_task, return_exceptions=True)


class MqttAlertTransport:
    """Alert records to ``alerts/<severity>``, one message each, in outbox order."""

    def __init__(self, link: MqttLink) -> None:
        self.link = link

    async def send(self, messages: Sequence[OutboxMessage], group_id: str) -> None:  # noqa: ARG002 - MQTT sends each alert on its own
        for m in messages:
            payload = json.dumps(m.record, sort_keys=True).encode()
            await self.link.publish(self.link.alerts_topic(str(m.record["severity"])), payload)
