"""Commands from a phone over MQTT: an allow-list, payloads checked against a schema.

A command is published to ``<prefix>/<instance>/cmd/<name>`` with a JSON object; the reply,
on ``<prefix>/<instance>/reply``, says ``ok`` with a result, or gives an error and nothing
was changed. The schema is documented in docs/mqtt.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

ALERT_ID = r"^[0-9a-f]{16}$"
LABEL = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
MAX_PAYLOAD_BYTES = 4096
MAX_SILENCE_ID = 2**63 - 1  # SQLite's largest integer


def _text(value: str) -> str:
    # JSON may escape a lone UTF-16 surrogate (\ud800): a str that cannot be stored or sent.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate (\\ud800-\\udfff), not text") from None
    return value


Text = Annotated[str, AfterValidator(_text)]


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: Annotated[Text, Field(max_length=64)] = ""
    by: Annotated[Text, Field(max_length=64, description="who sent it, for the record")] = ""


class Ack(_Command):
    """Acknowledge a firing alert: its reminders stop until it resolves."""

    alert_id: Annotated[str, Field(pattern=ALERT_ID)]


class SilenceCommand(_Command):
    """Silence alerts matching every matcher (label -> value; ``alertname`` is the rule)."""

    matchers: Annotated[dict[Annotated[str, Field(pattern=LABEL)], Text], Field(min_length=1)]
    minutes: Annotated[float, Field(gt=0.0, le=7 * 24 * 60)]
    comment: Annotated[Text, Field(max_length=200)] = ""


class Expire(_Command):
    """End a silence now."""

    silence_id: Annotated[int, Field(ge=1, le=MAX_SILENCE_ID)]


COMMANDS: dict[str, type[_Command]] = {
    "ack": Ack,
    "silence": SilenceCommand,
    "expire": Expire,
}


class CommandTarget(Protocol):
    """What commands act on: the running pipeline and its journal."""

    def acknowledge(self, alert_id: str) -> str | None: ...

    def add_silence(
        self, matchers: dict[str, str], starts: datetime, ends: datetime, comment: str
    ) -> int: ...

    def expire_silence(self, silence_id: int, now: datetime) -> bool: ...


def _error(name: str, request_id: str, message: str) -> dict[str, Any]:
    return {"command": name, "request_id": request_id, "ok": False, "error": message}


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "payload"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


class CommandProcessor:
    """Turns a command message into a change and a reply; a bad one changes nothing."""

    def __init__(self, target: CommandTarget, now: Callable[[], datetime]) -> None:
        self.target = target
        self.now = now
        self.accepted = 0
        self.rejected = 0

    async def __call__(self, name: str, payload: bytes) -> dict[str, Any]:
        reply = self._handle(name, payload)
        if reply["ok"]:
            self.accepted += 1
        else:
            self.rejected += 1
        return reply

    def _handle(self, name: str, payload: bytes) -> dict[str, Any]:
        if len(payload) > MAX_PAYLOAD_BYTES:
            return _error(name, "", f"payload over {MAX_PAYLOAD_BYTES} bytes")
        try:
            data = json.loads(payload)
        except RecursionError:
            return _error(name, "", "payload is not JSON: nested too deeply")
        except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
            return _error(name, "", f"payload is not JSON: {exc}")
        if not isinstance(data, dict):
            return _error(name, "", "payload must be a JSON object")
        raw_id = data.get("request_id", "")
        request_id = raw_id if isinstance(raw_id, str) else ""
        if name not in COMMANDS:
            allowed = ", ".join(sorted(COMMANDS))
            return _error(name, request_id, f"unknown command {name!r}; allowed: {allowed}")
        try:
            command = COMMANDS[name].model_validate(data)
        except ValidationError as exc:
            return _error(name, request_id, _validation_message(exc))
        result = self._apply(command)
        if isinstance(result, str):
            return _error(name, request_id, result)
        return {"command": name, "request_id": request_id, "ok": True, "result": result}

    def _apply(self, command: _Command) -> dict[str, Any] | str:
        now = self.now()
        if isinstance(command, Ack):
            alert = self.target.acknowledge(command.alert_id)
            if alert is None:
                return f"no firing alert has id {command.alert_id}"
            return {"alert_id": command.alert_id, "alert": alert}
        if isinstance(command, SilenceCommand):
            comment = (
                f"{command.comment} (by {command.by} over MQTT)" if command.by else command.comment
            )
            ends = now + timedelta(minutes=command.minutes)
            if ends <= now:
                return f"minutes: {command.minutes!r} is shorter than a microsecond"
            silence_id = self.target.add_silence(dict(command.matchers), now, ends, comment)
            return {"silence_id": silence_id, "ends": ends.isoformat()}
        if isinstance(command, Expire):
            if not self.target.expire_silence(command.silence_id, now):
                return f"no active silence has id {command.silence_id}"
            return {"silence_id": command.silence_id}
        raise AssertionError(command)  # pragma: no cover - COMMANDS lists every type
