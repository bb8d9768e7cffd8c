"""MQTT command payloads: every payload gets a reply, an error changes nothing, and nothing
raises, with the real journal behind the commands (docs/delivery.md, "Commands")."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.conftest import FUZZ
from fuzz.strategies import JSON_VALUES, TEXT, mutated_mapping
from monitor.delivery.commands import COMMANDS, MAX_PAYLOAD_BYTES, CommandProcessor
from monitor.domain.instruments import NEW_YORK
from monitor.sinks.journal import Journal

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=NEW_YORK)
FIRING = "0123456789abcdef"


class JournalTarget:
    """The pipeline's side of commands: silences in a real journal, one firing alert."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def acknowledge(self, alert_id: str) -> str | None:
        return "ShortDelta strategy=IC" if alert_id == FIRING else None

    def add_silence(
        self, matchers: dict[str, str], starts: datetime, ends: datetime, comment: str
    ) -> int:
        return self.journal.add_silence(matchers, starts, ends, comment, starts)

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        return self.journal.expire_silence(silence_id, now)


@pytest.fixture(scope="module")
def journal() -> Iterator[Journal]:
    with tempfile.TemporaryDirectory(prefix="fuzz-commands-") as name:
        journal = Journal(Path(name) / "journal.sqlite")
        journal._db.execute("PRAGMA synchronous=OFF")  # durability is not under test here
        yield journal
        journal._db.close()


@pytest.fixture(scope="module")
def processor(journal: Journal) -> CommandProcessor:
    return CommandProcessor(JournalTarget(journal), lambda: NOW)


VALID: dict[str, list[dict[str, Any]]] = {
    "ack": [{"alert_id": FIRING, "request_id": "p1", "by": "phone"}],
    "silence": [
        {"matchers": {"alertname": "ShortDelta"}, "minutes": 30, "comment": "rolling"},
        {"matchers": {"strategy": "IC", "leg": "P6425"}, "minutes": 0.5, "by": "me"},
    ],
    "expire": [{"silence_id": 1}],
}
PAYLOAD_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from([FIRING, "0123456789ABCDEF", 0, 1, 10080, 10081, 1e-9, 2**63, 2**64]),
    st.dictionaries(TEXT, TEXT, max_size=3),
)


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(COMMANDS)) | TEXT)
    kind = draw(st.sampled_from(["mutated", "mutated", "json", "bytes"]))
    if kind == "bytes":
        return name, draw(st.binary(max_size=200))
    if kind == "json":
        obj = draw(JSON_VALUES)
    else:
        base = draw(st.sampled_from(VALID.get(name) or VALID["silence"]))
        obj = draw(mutated_mapping(base, PAYLOAD_VALUES))
    # ensure_ascii: a surrogate in a str reaches the payload as a \\ud800 escape
    return name, json.dumps(obj).encode()


@given(payloads())
@example(("silence", b"[" * 4000))
@example(("expire", b'{"silence_id": 9223372036854775808}'))
@example(("silence", b'{"matchers": {"a": "b"}, "minutes": 30, "comment": "\\ud800"}'))
@example(("silence", b'{"matchers": {"a": "\\udfff"}, "minutes": 30}'))
@example(("ack", b'{"alert_id": "0123456789abcdef", "by": "\\ud800"}'))
@example(("silence", b'{"matchers": {"a": "b"}, "minutes": 1e-12}'))
@FUZZ
def test_every_payload_gets_a_reply(
    processor: CommandProcessor, journal: Journal, command: tuple[str, bytes]
) -> None:
    name, payload = command
    silences = len(journal.silences())
    counts = (processor.accepted, processor.rejected)
    reply = asyncio.run(processor(name, payload))
    json.dumps(reply).encode()  # as the MQTT link publishes it
    assert reply["command"] == name
    assert isinstance(reply["request_id"], str)
    if reply["ok"]:
        assert (processor.accepted, processor.rejected) == (counts[0] + 1, counts[1])
        assert len(payload) <= MAX_PAYLOAD_BYTES
        assert name in COMMANDS
        assert isinstance(reply["result"], dict)
        added = 1 if name == "silence" else 0
        assert len(journal.silences()) == silences + added
        if name == "silence":
            ends = datetime.fromisoformat(reply["result"]["ends"])
            assert NOW < ends <= NOW + timedelta(days=7)
    else:
        assert (processor.accepted, processor.rejected) == (counts[0], counts[1] + 1)
        assert isinstance(reply["error"], str)
        assert reply["error"]
        assert len(journal.silences()) == silences


@pytest.mark.parametrize(
    ("name", "payload", "error"),
    [
        ("silence", b"[" * 4000, "payload is not JSON: nested too deeply"),
        (
            "expire",
            b'{"silence_id": 9223372036854775808}',
            "silence_id: Input should be less than or equal to 9223372036854775807",
        ),
        (
            "silence",
            b'{"matchers": {"a": "b"}, "minutes": 30, "comment": "\\ud800"}',
            "comment: Value error, holds a lone surrogate",
        ),
        (
            "silence",
            b'{"matchers": {"a": "\\udfff"}, "minutes": 30}',
            "matchers.a: Value error, holds a lone surrogate",
        ),
        ("silence", b'{"matchers": {"a": "b"}, "minutes": 1e-12}', "minutes: 1e-12 is shorter"),
    ],
)
def test_regression_payloads(
    processor: CommandProcessor, name: str, payload: bytes, error: str
) -> None:
    reply = asyncio.run(processor(name, payload))
    assert reply["ok"] is False
    assert reply["error"].startswith(error)
