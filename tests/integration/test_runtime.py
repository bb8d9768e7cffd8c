"""A run opens its parts in turn and closes them in reverse, whatever fails: a start that fails
late leaves nothing behind (the state directory free for the next start, the journal closed,
no background task or signal handler left), and a run that ends closes in the documented
order (systemd told first, the outbox flushed while the journal is open, the lock last)."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.chat import ChatReceiver, chat_receiver_fixture  # noqa: F401 - the fixture
from test_delivery_end_to_end import write_config

from monitor import app, bundled
from monitor.config import (
    ConsoleConfig,
    DaemonConfig,
    FeedConfig,
    IbFeedConfig,
    JournalConfig,
    MetricsConfig,
    MqttConfig,
    load_config,
)
from monitor.delivery.service import Delivery
from monitor.endpoints import Endpoints
from monitor.errors import ConfigError, MonitorError
from monitor.instance_lock import InstanceLock
from monitor.live import run_live
from monitor.portfolio.model import load_portfolio
from monitor.rules.loader import load_rule_set
from monitor.sinks.journal import Journal
from monitor.systemd import Notifier
from monitor.tasks import TaskOwner

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def handlers() -> dict[int, Any]:
    return {number: signal.getsignal(number) for number in HANDLED}


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def replay_config(tmp_path: Path) -> DaemonConfig:
    return DaemonConfig(
        instance="lifecycle",
        feed=FeedConfig(session=bundled.SESSION),
        portfolio=bundled.PORTFOLIO,
        rules=[bundled.RULES],
        journal=JournalConfig(path=tmp_path / "state" / "journal.sqlite"),
        metrics=MetricsConfig(enabled=False),
        console=ConsoleConfig(enabled=False),
    )


def metrics_port_taken(tmp_path: Path, port: int) -> DaemonConfig:
    return replay_config(tmp_path).model_copy(
        update={"feed": IbFeedConfig(kind="ib"), "metrics": MetricsConfig(port=port)}
    )


def command_secret_unreadable(tmp_path: Path, _port: int) -> DaemonConfig:
    mqtt = MqttConfig(enabled=True, command_secret_file=tmp_path / "no-such-secret")
    return replay_config(tmp_path).model_copy(
        update={"feed": IbFeedConfig(kind="ib"), "mqtt": mqtt}
    )


def alerts_file_unopenable(tmp_path: Path, _port: int) -> DaemonConfig:
    return replay_config(tmp_path).model_copy(update={"alerts_out": tmp_path})  # a directory


async def start(config: DaemonConfig) -> None:
    if isinstance(config.feed, IbFeedConfig):
        portfolio, rules = load_portfolio(config.portfolio), load_rule_set(config.rules)
        await run_live(config, portfolio, rules, config_path=None)
    else:
        await app.run(app.prepare(config))


@pytest.mark.parametrize(
    ("make_config", "error", "message"),
    [
        (metrics_port_taken, MonitorError, "cannot serve metrics on 127.0.0.1:"),
        (command_secret_unreadable, ConfigError, "field mqtt.command_secret_file: cannot read"),
        (alerts_file_unopenable, MonitorError, r"alerts_out \(--alerts-out\): .*Is a directory"),
    ],
    ids=["live, metrics port taken", "live, delivery refused", "replay, alerts file refused"],
)
def test_a_start_failing_late_leaves_nothing_open(
    tmp_path: Path,
    taken_port: int,
    make_config: Callable[[Path, int], DaemonConfig],
    error: type[Exception],
    message: str,
) -> None:
    config = make_config(tmp_path, taken_port)

    async def scenario() -> None:
        with pytest.raises(error, match=message):
            await start(config)
        loop = asyncio.get_running_loop()
        assert [signal.Signals(n).name for n in HANDLED if loop.remove_signal_handler(n)] == []
        assert [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(scenario())
    journal = config.journal.path
    assert not journal.with_name(journal.name + "-wal").exists()  # SQLite's, gone at close
    InstanceLock(journal).acquire()  # the next start takes the state directory


def test_a_run_closes_in_reverse_order_of_opening(
    tmp_path: Path, chat_receiver: ChatReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, speed=0.0, chat=chat_receiver)
    config = load_config(path).model_copy(update={"metrics": MetricsConfig(port=0)})
    steps: list[tuple[str, bool, bool]] = []  # the step, SIGHUP and SIGTERM still handled
    at_journal_close: list[tuple[int, int]] = []  # messages waiting, and received
    default = handlers()

    def spy(cls: type, method: str, step: str) -> None:
        real = getattr(cls, method)

        def note(self: Any) -> None:
            now = handlers()
            steps.append(
                (
                    step,
                    now[signal.SIGHUP] != default[signal.SIGHUP],
                    now[signal.SIGTERM] != default[signal.SIGTERM],
                )
            )
            if isinstance(self, Journal):
                waiting = sum(self.outbox.backlog(c).messages for c in self.outbox.channels())
                at_journal_close.append((waiting, len(chat_receiver.received)))

        if asyncio.iscoroutinefunction(real):

            async def traced_async(self: Any, *args: Any) -> Any:
                note(self)
                return await real(self, *args)

            monkeypatch.setattr(cls, method, traced_async)
        else:

            def traced(self: Any, *args: Any) -> Any:
                note(self)
                return real(self, *args)

            monkeypatch.setattr(cls, method, traced)

    spy(Notifier, "stopping", "systemd told")
    spy(Delivery, "stop", "delivery stopped")
    spy(Journal, "close", "journal closed")
    spy(Endpoints, "stop", "endpoints stopped")
    spy(TaskOwner, "close", "tasks ended")
    spy(InstanceLock, "release", "lock released")
    summary = asyncio.run(app.run(app.prepare(config, config_path=path)))
    assert steps == [
        ("systemd told", True, True),
        ("delivery stopped", False, True),  # a reload is no longer asked for; a stop still is
        ("journal closed", False, False),
        ("endpoints stopped", False, False),
        ("tasks ended", False, False),
        ("lock released", False, False),
    ]
    ((waiting, received),) = at_journal_close
    assert waiting == 0
    assert received > 0  # the outbox was flushed to the chat receiver before the journal closed
    assert summary.undelivered == 0
