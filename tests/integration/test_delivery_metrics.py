"""Per-channel delivery metrics over a chat outage, scraped as Prometheus text."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from conftest import REPO
from harness.chat import ChatReceiver, chat_receiver_fixture  # noqa: F401 - the fixture
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor import bundled
from monitor.config import (
    ChannelConfig,
    DaemonConfig,
    DeliveryConfig,
    FeedConfig,
    JournalConfig,
    NotifyConfig,
)
from monitor.delivery.service import Delivery
from monitor.domain.alerts import AlertState, AlertTransition, Severity
from monitor.metrics import DeliveryCollector
from monitor.sinks.journal import Journal
from monitor.tasks import TaskOwner

START = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)


class NoCommands:
    def acknowledge(self, alert_id: str) -> str | None:
        return None

    def add_silence(self, *args: object) -> int:
        raise AssertionError(args)

    def expire_silence(self, *args: object) -> bool:
        raise AssertionError(args)


def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, s.labels.get("channel", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def transition(minute: int) -> AlertTransition:
    return AlertTransition(
        START.replace(minute=minute),
        "Delta",
        Severity.CRITICAL,
        AlertState.FIRING,
        (("leg", f"P{6400 + minute}"),),
        0.31,
        "delta per contract",
        "short put: delta 0.31",
    )


async def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


def test_delivery_metrics_follow_an_outage(tmp_path: Path, chat_receiver: ChatReceiver) -> None:
    credentials = tmp_path / "apprise.yml"
    credentials.write_text(f"urls:\n  - {chat_receiver.apprise_url()}\n")
    config = DaemonConfig(
        feed=FeedConfig(session=bundled.SESSION),
        portfolio=bundled.PORTFOLIO,
        rules=[REPO / "rules"],
        journal=JournalConfig(path=tmp_path / "j.sqlite"),
        notify=NotifyConfig(
            credentials=credentials,
            channels=[ChannelConfig(name="desk", group_window_seconds=0, min_interval_seconds=0)],
        ),
        delivery=DeliveryConfig(retry_initial_seconds=0.05, retry_max_seconds=0.1),
    )
    journal = Journal(config.journal.path)
    delivery = Delivery(config, journal, NoCommands(), now=lambda: START)
    registry = CollectorRegistry()
    registry.register(DeliveryCollector(delivery))
    channel = "chat:desk"

    async def scenario() -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
        chat_receiver.fail(500)
        await delivery.start(TaskOwner(lambda _failure: None))
        await journal.emit([transition(1), transition(2)])
        await wait_until(lambda: chat_receiver.rejected >= 3)
        await asyncio.sleep(1.1)  # the worker looks at its backlog at least once a second
        during = samples(registry)
        chat_receiver.recover()
        await wait_until(lambda: len(chat_receiver.received) == 2)
        await asyncio.sleep(0.1)
        after = samples(registry)
        await delivery.stop()
        return during, after

    during, after = asyncio.run(scenario())
    assert during[("condor_delivery_backlog_messages", channel)] == 2
    assert during[("condor_delivery_oldest_undelivered_age_seconds", channel)] > 0.5
    assert during[("condor_delivery_failed_total", channel)] >= 3
    assert during[("condor_delivery_sent_total", channel)] == 0
    assert ("condor_delivery_last_success_timestamp_seconds", channel) not in during
    assert after[("condor_delivery_sent_total", channel)] == 2
    assert after[("condor_delivery_retried_total", channel)] >= 3
    assert after[("condor_delivery_backlog_messages", channel)] == 0
    assert after[("condor_delivery_oldest_undelivered_age_seconds", channel)] == 0
    assert (
        abs(after[("condor_delivery_last_success_timestamp_seconds", channel)] - time.time()) < 10
    )
