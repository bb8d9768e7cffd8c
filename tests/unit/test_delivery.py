"""The outbox and its workers: order, retries with backoff, fixed groups, restarts; the
command schema; the phone text."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor.backoff import Backoff
from monitor.delivery import text
from monitor.delivery.commands import CommandProcessor
from monitor.delivery.worker import ChannelPolicy, ChannelWorker, DeliveryError
from monitor.domain.alerts import AlertState, AlertTransition, Matcher, Severity
from monitor.domain.instruments import NEW_YORK
from monitor.domain.routing import Route
from monitor.sinks.base import transition_record
from monitor.sinks.journal import Journal
from monitor.sinks.outbox import OutboxMessage

START = datetime(2026, 3, 3, 12, 0, tzinfo=NEW_YORK)


def transition(
    minute: int, rule: str = "Delta", *, state: AlertState = AlertState.FIRING, **kw: object
) -> AlertTransition:
    fields: dict[str, object] = {
        "time": START + timedelta(minutes=minute),
        "rule": rule,
        "severity": Severity.CRITICAL,
        "state": state,
        "labels": (("strategy", "IC"),),
        "value": 0.31,
        "unit": "delta per contract",
        "message": "IC short put 6425: delta 0.310",
        "action": "Roll the tested side.",
    }
    fields.update(kw)
    return AlertTransition(**fields)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A transport that records what it is given and fails while ``failing``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []
        self.attempts = 0
        self.failing = False

    async def send(self, messages: Sequence[OutboxMessage], group_id: str) -> None:
        self.attempts += 1
        if self.failing:
            raise DeliveryError("service answered 500")
        self.sent.append((group_id, [m.message_id for m in messages]))


def journal(tmp_path: Path, clock: Clock, *routes: Route) -> Journal:
    return Journal(tmp_path / "j.sqlite", routes=routes or (Route("chat"),), wall_clock=clock)


def test_routes_pick_by_severity_labels_and_state(tmp_path: Path) -> None:
    clock = Clock()
    routes = (
        Route("all"),
        Route("critical", frozenset({Severity.CRITICAL}), send_resolved=False),
        Route("other", matchers=(Matcher("strategy", "OTHER"),)),
    )
    j = journal(tmp_path, clock, *routes)
    firing, resolved = transition(0), transition(5, state=AlertState.RESOLVED)
    held = transition(6, notify=False, suppressed_by="silence 1")
    asyncio.run(j.emit([firing, resolved, held]))
    assert [m.message_id for m in j.outbox.head("all", 10)] == [
        firing.message_id,
        resolved.message_id,
    ]
    assert [m.message_id for m in j.outbox.head("critical", 10)] == [firing.message_id]
    assert j.outbox.head("other", 10) == []
    # The record sent is the journal's, byte for byte.
    (head,) = j.outbox.head("critical")
    assert head.record["id"] == firing.message_id
    assert head.record["alert_id"] == firing.alert_id == resolved.alert_id


def test_message_ids_are_stable_and_distinct() -> None:
    assert transition(0).message_id == transition(0).message_id
    ids = {transition(0).message_id, transition(1).message_id, transition(0, "Other").message_id}
    ids.add(transition(0, repeat=True).message_id)
    assert len(ids) == 4


def test_failures_are_retried_in_order_with_capped_jittered_backoff(tmp_path: Path) -> None:
    clock = Clock()
    j = journal(tmp_path, clock)
    sent = [transition(0), transition(1), transition(2, state=AlertState.RESOLVED)]
    asyncio.run(j.emit(sent))
    recorder = Recorder()
    backoff = Backoff(initial_seconds=1.0, cap_seconds=8.0)
    worker = ChannelWorker(
        "chat",
        j.outbox,
        recorder,
        ChannelPolicy(backoff=backoff),
        wall_clock=clock,
        rng=random.Random(3),  # noqa: S311 - jitter
    )
    recorder.failing = True
    waits = []
    for _ in range(6):
        waits.append(asyncio.run(worker.step()))
        clock.now += waits[-1]
    # Attempt n waits at most min(8, 2**(n-1)) seconds.
    assert all(0.0 <= w <= min(8.0, 2.0**n) for n, w in enumerate(waits))
    assert worker.stats.failed == 6
    assert worker.stats.retried == 5
    assert worker.stats.backlog_messages == 3
    recorder.failing = False
    while asyncio.run(worker.step()) == 0.0:
        pass
    assert [ids for _group, ids in recorder.sent] == [[t.message_id] for t in sent]
    assert worker.stats.sent == 3
    assert j.outbox.backlog("chat").messages == 0


def test_a_group_is_fixed_at_its_first_attempt(tmp_path: Path) -> None:
    clock = Clock()
    j = journal(tmp_path, clock)
    recorder = Recorder()
    policy = ChannelPolicy(group_window_seconds=10.0, backoff=Backoff(1.0, 1.0))
    worker = ChannelWorker("chat", j.outbox, recorder, policy, wall_clock=clock)
    first = [transition(0), transition(1)]
    asyncio.run(j.emit(first))
    assert asyncio.run(worker.step()) == pytest.approx(10.0)  # the window is open
    clock.now += 10.0
    recorder.failing = True
    asyncio.run(worker.step())
    asyncio.run(j.emit([transition(2)]))  # arrives after the group was formed
    clock.now += 5.0
    recorder.failing = False
    asyncio.run(worker.step())
    clock.now += 20.0
    asyncio.run(worker.step())
    (g1, ids1), (g2, ids2) = recorder.sent
    assert ids1 == [t.message_id for t in first]  # the retry sent the same group
    assert ids2 == [transition(2).message_id]
    assert g1 != g2


def test_undelivered_messages_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    j = journal(tmp_path, clock)
    asyncio.run(j.emit([transition(0), transition(1)]))
    asyncio.run(j.close())
    again = journal(tmp_path, clock)
    asyncio.run(again.emit([transition(1)]))  # the same transition again: not queued twice
    recorder = Recorder()
    worker = ChannelWorker("chat", again.outbox, recorder, wall_clock=clock)
    assert asyncio.run(worker.drain(5.0))
    assert [ids[0] for _g, ids in recorder.sent] == [
        transition(0).message_id,
        transition(1).message_id,
    ]


def test_drain_gives_up_after_its_time_and_keeps_the_rest(tmp_path: Path) -> None:
    clock = Clock()
    j = journal(tmp_path, clock)
    asyncio.run(j.emit([transition(0)]))
    recorder = Recorder()
    recorder.failing = True
    worker = ChannelWorker(
        "chat", j.outbox, recorder, ChannelPolicy(backoff=Backoff(0.01, 0.01)), wall_clock=clock
    )
    assert not asyncio.run(worker.drain(0.0))
    assert j.outbox.backlog("chat").messages == 1


def test_prune_deletes_only_old_delivered_rows(tmp_path: Path) -> None:
    clock = Clock()
    j = journal(tmp_path, clock)
    asyncio.run(j.emit([transition(0), transition(1)]))
    first, second = j.outbox.head("chat", 2)
    j.outbox.delivered([first.row], clock.now)
    assert j.outbox.prune(clock.now + 1.0) == 1
    assert [m.row for m in j.outbox.head("chat", 5)] == [second.row]


def test_phone_text_has_rule_value_unit_action_and_ids() -> None:
    record = json.loads(json.dumps(transition_record(transition(0))))
    assert text.title([record]) == "CRITICAL Delta"
    body = text.body([record], "g")
    assert "Value: 0.31 delta per contract" in body
    assert "Do: Roll the tested side." in body
    assert "12:00:00 ET" in body
    assert record["id"] in body
    resolved = dict(record, state="resolved")
    assert text.title([record, resolved, record]) == "3 alerts: 2 critical, 1 resolved"
    assert text.body([record, resolved], "g1").endswith("group g1")
    assert "Do:" not in text.body([resolved], "g")


class Target:
    """Records calls; the real pipeline is exercised end to end over MQTT."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def acknowledge(self, alert_id: str) -> str | None:
        self.calls.append(("ack", alert_id))
        return "Delta strategy=IC" if alert_id == "a" * 16 else None

    def add_silence(
        self, matchers: dict[str, str], starts: datetime, ends: datetime, comment: str
    ) -> int:
        self.calls.append(("silence", matchers, ends - starts, comment))
        return 7

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        self.calls.append(("expire", silence_id))
        return silence_id == 7


@pytest.mark.parametrize(
    ("name", "payload", "error"),
    [
        ("reboot", b"{}", "unknown command 'reboot'; allowed: ack, expire, silence"),
        ("silence", b"not json", "payload is not JSON"),
        ("silence", b"[1, 2]", "payload must be a JSON object"),
        ("silence", b'{"matchers": {}, "minutes": 5}', "matchers: "),
        ("silence", b'{"matchers": {"alertname": "X"}, "minutes": 0}', "minutes: "),
        ("silence", b'{"matchers": {"alertname": "X"}, "minutes": 1e9}', "minutes: "),
        ("silence", b'{"matchers": {"bad label": "X"}, "minutes": 5}', "matchers.bad label"),
        ("silence", b'{"matchers": {"a": "X"}, "minutes": 5, "sudo": 1}', "sudo: Extra inputs"),
        ("ack", b'{"alert_id": "xyz"}', "alert_id: String should match pattern"),
        ("ack", b"{}", "alert_id: Field required"),
        ("expire", b'{"silence_id": "seven"}', "silence_id: "),
        ("silence", b"{" + b" " * 5000 + b"}", "payload over 4096 bytes"),
        ("silence", b"\xff\xfe", "payload is not JSON"),
    ],
)
def test_bad_commands_get_an_error_and_change_nothing(
    name: str, payload: bytes, error: str
) -> None:
    target = Target()
    processor = CommandProcessor(target, lambda: START)
    reply = asyncio.run(processor(name, payload))
    assert reply["ok"] is False
    assert error in reply["error"]
    assert target.calls == []
    assert processor.rejected == 1


def test_commands_that_apply() -> None:
    target = Target()
    processor = CommandProcessor(target, lambda: START)
    silence = (
        b'{"request_id": "p1", "matchers": {"alertname": "Delta"}, "minutes": 30, "by": "phone"}'
    )
    reply = asyncio.run(processor("silence", silence))
    assert reply == {
        "command": "silence",
        "request_id": "p1",
        "ok": True,
        "result": {"silence_id": 7, "ends": (START + timedelta(minutes=30)).isoformat()},
    }
    assert target.calls[0][:3] == ("silence", {"alertname": "Delta"}, timedelta(minutes=30))
    assert asyncio.run(processor("ack", json.dumps({"alert_id": "a" * 16}).encode()))["ok"]
    missing = asyncio.run(processor("ack", json.dumps({"alert_id": "b" * 16}).encode()))
    assert missing["error"] == f"no firing alert has id {'b' * 16}"
    assert asyncio.run(processor("expire", b'{"silence_id": 7}'))["ok"]
    assert not asyncio.run(processor("expire", b'{"silence_id": 8}'))["ok"]
    assert (processor.accepted, processor.rejected) == (3, 2)


def test_min_interval_spaces_sends_for_the_service_rate_limit(tmp_path: Path) -> None:
    clock = Clock()
    j = journal(tmp_path, clock)
    asyncio.run(j.emit([transition(0), transition(1)]))
    recorder = Recorder()
    worker = ChannelWorker(
        "chat", j.outbox, recorder, ChannelPolicy(min_interval_seconds=5.0), wall_clock=clock
    )
    assert asyncio.run(worker.step()) == 0.0
    assert asyncio.run(worker.step()) == pytest.approx(5.0)  # too soon: wait, send nothing
    assert len(recorder.sent) == 1
    clock.now += 5.0
    assert asyncio.run(worker.step()) == 0.0
    assert len(recorder.sent) == 2


class Hanging:
    """A transport whose send never ends: a service that accepted the connection and went
    silent."""

    def __init__(self) -> None:
        self.cancelled = 0

    async def send(self, messages: Sequence[OutboxMessage], group_id: str) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def test_drain_gives_up_on_a_send_that_never_ends_when_its_time_is_up(tmp_path: Path) -> None:
    clock = Clock()
    j = journal(tmp_path, clock)
    asyncio.run(j.emit([transition(0)]))
    hanging = Hanging()
    worker = ChannelWorker("chat", j.outbox, hanging, wall_clock=clock)

    async def drain() -> bool:
        async with asyncio.timeout(30.0):  # far beyond the drain's own time
            return await worker.drain(0.2)

    assert not asyncio.run(drain())
    assert hanging.cancelled == 1  # the attempt in progress was abandoned
    assert j.outbox.backlog("chat").messages == 1  # kept for the next start
