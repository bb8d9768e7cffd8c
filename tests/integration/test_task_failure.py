"""A background task that crashes stops the run: the chat channel's delivery worker raising
(a fault no handled delivery error covers) is logged with its traceback, the run shuts down
as for SIGTERM and exits non-zero naming the task, and nothing journaled is lost: every
transition is in the journal, and the chat messages wait in the outbox for the next start.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from harness.chat import ChatReceiver, chat_receiver_fixture  # noqa: F401 - the fixture
from test_delivery_end_to_end import write_config

from monitor.cli import EXIT_TASK_FAILED, main
from monitor.delivery.worker import ChannelWorker


def test_a_crashed_delivery_worker_stops_the_run_non_zero_and_loses_nothing(
    tmp_path: Path,
    chat_receiver: ChatReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, speed=0.0, chat=chat_receiver)
    alerts_out = tmp_path / "alerts.jsonl"
    config.write_text(f'alerts_out = "{alerts_out}"\n' + config.read_text())
    real = ChannelWorker.step

    async def step(self: ChannelWorker, *, flush: bool = False) -> float:
        if self.outbox.backlog(self.channel).messages:
            raise RuntimeError("delivery fault injected by the test")
        return await real(self, flush=flush)

    monkeypatch.setattr(ChannelWorker, "step", step)
    code = main(["--log-level", "info", "run", "--config", str(config)])
    err = capfd.readouterr().err
    assert code == EXIT_TASK_FAILED
    assert "background_task_failed" in err
    assert "delivery fault injected by the test" in err  # the traceback's last line
    (last,) = [line for line in err.splitlines() if line.startswith("condor-monitor: error:")]
    assert "background task 'deliver-" in last
    assert "RuntimeError: delivery fault injected by the test; the run stopped" in last
    assert chat_receiver.received == []  # nothing went out through the broken worker
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        journaled = [
            json.loads(r[0]) for r in db.execute("SELECT record FROM alert_transitions ORDER BY id")
        ]
        waiting = db.execute(
            "SELECT count(*) FROM outbox WHERE delivered IS NULL AND channel LIKE '%desk%'"
        ).fetchone()[0]
    written = [json.loads(line) for line in alerts_out.read_text().splitlines()]
    assert written  # the run got as far as its first alerts
    assert [(r["rule"], r["state"], r["time"]) for r in journaled] == [
        (r["rule"], r["state"], r["time"]) for r in written
    ]
    notified = sum(1 for r in journaled if r["notify"])
    assert waiting == notified > 0  # every chat message kept for the next start
