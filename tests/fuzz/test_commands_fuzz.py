"""MQTT command payloads: every payload gets a reply, an error changes nothing, and nothing
raises, with the real journal behind the commands (docs/delivery.md, "Commands").

Payloads go through the daemon's gate: most are signed after they were mutated, so they reach
the schema; others are sent unsigned, or mutated after signing, and must be refused."""

from __future__ import annotations

import asyncio
import json
import secrets
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
from monitor.delivery.commands import (
    COMMANDS,
    MAX_PAYLOAD_BYTES,
    CommandGate,
    CommandProcessor,
    CommandSecret,
    sign_command,
)
from monitor.domain.instruments import NEW_YORK
from monitor.sinks.journal import Journal

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=NEW_YORK)
FIRING = "0123456789abcdef"
SECRET = CommandSecret(secrets.token_hex(32))
BASE = "condor/fuzz"
STEP_SECONDS = 7.0  # the wall clock between two payloads: a silence token refills in 6 s


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


class Clock:
    def __init__(self) -> None:
        self.now = 1_772_560_800.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def processor(journal: Journal, clock: Clock) -> CommandGate:
    return CommandGate(
        CommandProcessor(JournalTarget(journal), lambda: NOW),
        SECRET,
        topic_base=BASE,
        wall_clock=clock,
    )


def sign(name: str, obj: Any, ts: float) -> Any:
    """``obj`` signed for ``name``'s topic when it is an object whose fields can be signed."""
    if not isinstance(obj, dict) or {"ts", "nonce", "hmac"} & set(obj):
        return obj
    return sign_command(SECRET, f"{BASE}/cmd/{name}", obj, ts=ts, nonce=secrets.token_hex(8))


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
def payloads(draw: st.DrawFn) -> tuple[str, Any, str]:
    """A command name, what to send (bytes as they are, else JSON), and how it is signed:
    ``signed`` (after any mutation), ``unsigned``, or ``tampered`` (mutated after signing)."""
    name = draw(st.sampled_from(sorted(COMMANDS)) | TEXT)
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "json", "bytes"]))
    if kind == "bytes":
        return name, draw(st.binary(max_size=200)), "unsigned"
    signing = draw(st.sampled_from(["signed", "signed", "signed", "unsigned", "tampered"]))
    if kind == "json":
        return name, draw(JSON_VALUES), signing
    base = draw(st.sampled_from(VALID.get(name) or VALID["silence"]))
    return name, draw(mutated_mapping(base, PAYLOAD_VALUES)), signing


def encode(name: str, obj: Any, signing: str, ts: float) -> bytes:
    if isinstance(obj, bytes):
        return obj
    if signing != "unsigned":
        obj = sign(name, obj, ts)
    if signing == "tampered" and isinstance(obj, dict) and "hmac" in obj:
        obj = {**obj, "request_id": f"{obj.get('request_id')}!"}
    # ensure_ascii: a surrogate in a str reaches the payload as a \\ud800 escape
    return json.dumps(obj).encode()


def make_room(journal: Journal) -> None:
    """Ends the silences in force before they reach the cap, so that adds go on succeeding."""
    in_force = [s for s in journal.silences() if s.ends > NOW]
    if len(in_force) >= 90:
        for silence in in_force:
            journal.expire_silence(silence.id, NOW)


@given(payloads())
@example(("silence", b"[" * 4000, "unsigned"))
@example(("expire", {"silence_id": 2**63}, "signed"))
@example(("silence", {"matchers": {"a": "b"}, "minutes": 30, "comment": "\ud800"}, "signed"))
@example(("silence", {"matchers": {"a": "\udfff"}, "minutes": 30}, "signed"))
@example(("ack", {"alert_id": "0123456789abcdef", "by": "\ud800"}, "signed"))
@example(("silence", {"matchers": {"a": "b"}, "minutes": 1e-12}, "signed"))
@example(("silence", {"matchers": {"a": "b"}, "minutes": 30.0}, "signed"))
@example(("silence", {"matchers": {"a": "b"}, "minutes": 30}, "tampered"))
@example(("silence", {"matchers": {"a": "b"}, "minutes": 30}, "unsigned"))
@example(("\ud800", {"matchers": {"a": "b"}, "minutes": 30}, "signed"))
@FUZZ
def test_every_payload_gets_a_reply(
    processor: CommandGate, journal: Journal, clock: Clock, command: tuple[str, Any, str]
) -> None:
    name, obj, signing = command
    clock.now += STEP_SECONDS
    make_room(journal)
    payload = encode(name, obj, signing, clock.now)
    silences = len(journal.silences())
    counts = (processor.accepted, processor.rejected)
    reply = asyncio.run(processor(name, payload))
    json.dumps(reply).encode()  # as the MQTT link publishes it
    assert reply["command"] == name
    assert isinstance(reply["request_id"], str)
    if reply["ok"]:
        assert signing == "signed"
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
        assert reply["reason"] in {"invalid", "signature", "not_found", "capped"}, reply
        assert len(journal.silences()) == silences


@pytest.mark.parametrize(
    ("name", "payload", "error"),
    [
        ("silence", b"[" * 4000, "payload is not JSON: nested too deeply"),
        (
            "expire",
            {"silence_id": 9223372036854775808},
            "silence_id: Input should be less than or equal to 9223372036854775807",
        ),
        (
            "silence",
            {"matchers": {"a": "b"}, "minutes": 30, "comment": "\ud800"},
            "comment: Value error, holds a lone surrogate",
        ),
        (
            "silence",
            {"matchers": {"a": "\udfff"}, "minutes": 30},
            "matchers.a: Value error, holds a lone surrogate",
        ),
        ("silence", {"matchers": {"a": "b"}, "minutes": 1e-12}, "minutes: 1e-12 is shorter"),
    ],
)
def test_regression_payloads(
    processor: CommandGate, clock: Clock, name: str, payload: Any, error: str
) -> None:
    reply = asyncio.run(processor(name, encode(name, payload, "signed", clock.now)))
    assert reply["ok"] is False
    assert reply["error"].startswith(error)
