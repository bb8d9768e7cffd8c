"""Commands from a phone over MQTT: signed with a shared secret, fresh, never replayed, rate
limited; then an allow-list, payloads checked against a schema.

A command is published to ``<prefix>/<instance>/cmd/<name>`` with a JSON object; the reply,
on ``<prefix>/<instance>/reply``, says ``ok`` with a result, or gives an error and its
``reason``, and nothing was changed. An MQTT message names no sender the daemon could check
(user properties are whatever the publisher wrote), so authority comes from two places: the
broker's ACL says who may publish to ``cmd/#`` (deploy/mosquitto/), and ``CommandGate`` takes
a command only with an HMAC-SHA256, under the shared command secret, of its topic and its
payload, within ``SIGNATURE_WINDOW_SECONDS`` of the daemon's clock and with a nonce it has not
seen. ``CommandProcessor`` behind the gate checks the schema and applies. The format, the
limits and a signing recipe: docs/delivery.md, "Commands".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, NamedTuple, Protocol

import structlog
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from monitor.logs import register_secret
from monitor.sinks.journal import SilenceLimitError

log = structlog.get_logger(__name__)

ALERT_ID = r"^[0-9a-f]{16}$"
LABEL = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
MAX_PAYLOAD_BYTES = 4096
MAX_SILENCE_ID = 2**63 - 1  # SQLite's largest integer

SIGNATURE_WINDOW_SECONDS = 120.0  # `ts` may be this far from the daemon's clock, either way
MAX_NONCES = 1024  # nonces remembered at once: accepted commands within the window
SILENCES_PER_MINUTE = 10  # silence commands: a burst of 10, then one every 6 s
MIN_SECRET_CHARS = 32  # e.g. `openssl rand -hex 32` (64 characters)
ENVELOPE = ("ts", "nonce", "hmac")  # the signing keys, not part of any command's schema
NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")
HMAC_HEX = re.compile(r"[0-9a-f]{64}")
EXACT_FLOAT = 2.0**53  # whole numbers below this print the same as an int in any language
COMMANDS_OFF = (
    "commands are off: the daemon has no command secret; set [mqtt] command_secret_file or "
    'command_secret_credential and sign each command (docs/delivery.md, "Commands")'
)


class Reason(StrEnum):
    """Why a command was refused: the reply's ``reason``, and a metrics label."""

    INVALID = "invalid"  # not a JSON object, an unknown command or key, a value out of range
    DISABLED = "disabled"  # the daemon has no command secret
    SIGNATURE = "signature"  # no signature, a malformed one, or one that does not match
    STALE = "stale"  # `ts` outside the window
    REPLAYED = "replayed"  # a nonce seen within the window
    RATE_LIMITED = "rate_limited"  # too many silence commands, or commands, in a short time
    CAPPED = "capped"  # as many silences in force as there may be
    NOT_FOUND = "not_found"  # no such firing alert, no such active silence
    FAILED = "failed"  # the journal could not take the change


class Refusal(NamedTuple):
    reason: Reason
    message: str


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


# -- signing ------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_FLOAT:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """What a signature covers of a payload: JSON with the keys sorted at every level, no
    spaces, text as UTF-8 (not ``\\u`` escapes), whole numbers without a fraction (``30``,
    not ``30.0``). A payload written that way is its own canonical form."""
    text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def topic_base(prefix: str, instance: str) -> str:
    """Where one daemon's topics live: ``<prefix>/<instance>`` (alerts, state, commands)."""
    return f"{prefix}/{instance}"


def command_topic(base: str, name: str) -> str:
    """The topic a command ``name`` is published to under ``base`` (``topic_base``)."""
    return f"{base}/cmd/{name}"


def signed_message(topic: str, fields: Mapping[str, Any]) -> bytes:
    """The bytes the HMAC is taken of: the topic, a newline, the payload without ``hmac``."""
    return topic.encode("utf-8", "surrogatepass") + b"\n" + canonical_json(dict(fields))


class CommandSecret:
    """The shared secret commands are signed with; masked in logs, shown in no repr."""

    __slots__ = ("_key",)

    def __init__(self, value: str) -> None:
        if len(value) < MIN_SECRET_CHARS:
            raise ValueError(
                f"the command secret has {len(value)} characters; use at least "
                f"{MIN_SECRET_CHARS} (e.g. the output of `openssl rand -hex 32`)"
            )
        register_secret(value)
        self._key = value.encode()

    def __repr__(self) -> str:
        return "CommandSecret(***)"

    def digest(self, topic: str, fields: Mapping[str, Any]) -> str:
        """HMAC-SHA256 of ``signed_message(topic, fields)``, in lower-case hex."""
        return hmac.new(self._key, signed_message(topic, fields), hashlib.sha256).hexdigest()


def sign_command(
    secret: CommandSecret, topic: str, command: Mapping[str, Any], *, ts: float, nonce: str
) -> dict[str, Any]:
    """``command`` with ``ts``, ``nonce`` and their ``hmac``: a payload the gate takes."""
    fields = {**command, "ts": ts, "nonce": nonce}
    return {**fields, "hmac": secret.digest(topic, fields)}


# -- limits -------------------------------------------------------------------------------------


class TokenBucket:
    """``capacity`` at once, refilled at ``per_second``, on the clock ``take`` is given."""

    def __init__(self, capacity: float, per_second: float) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self._tokens = capacity
        self._stamp: float | None = None

    def take(self, now: float) -> float:
        """Takes a token: 0.0 when there was one, else the seconds until there is one."""
        if self._stamp is not None:
            elapsed = max(now - self._stamp, 0.0)  # a clock set back refills nothing
            self._tokens = min(self.capacity, self._tokens + elapsed * self.per_second)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.per_second


class NonceMemory:
    """The nonces of signed commands, each until its ``ts`` leaves the window (a replay after
    that is stale anyway): at most ``capacity``, so memory stays bounded."""

    def __init__(self, capacity: int = MAX_NONCES) -> None:
        self.capacity = capacity
        self._until: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._until)

    def forget_before(self, now: float) -> None:
        self._until = {n: until for n, until in self._until.items() if until >= now}

    def __contains__(self, nonce: str) -> bool:
        return nonce in self._until

    def remember(self, nonce: str, until: float) -> bool:
        """False, remembering nothing, when full."""
        if len(self._until) >= self.capacity:
            return False
        self._until[nonce] = until
        return True


# -- replies ------------------------------------------------------------------------------------


def _error(name: str, request_id: str, refusal: Refusal) -> dict[str, Any]:
    return {
        "command": name,
        "request_id": request_id,
        "ok": False,
        "error": refusal.message,
        "reason": refusal.reason.value,
    }


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "payload"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_payload(payload: bytes) -> dict[str, Any] | Refusal:
    """The payload's JSON object, or why it is not one."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Refusal(Reason.INVALID, f"payload over {MAX_PAYLOAD_BYTES} bytes")
    try:
        data = json.loads(payload)
    except RecursionError:
        return Refusal(Reason.INVALID, "payload is not JSON: nested too deeply")
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        return Refusal(Reason.INVALID, f"payload is not JSON: {exc}")
    if not isinstance(data, dict):
        return Refusal(Reason.INVALID, "payload must be a JSON object")
    return data


def validate(name: str, data: Mapping[str, Any]) -> _Command | Refusal:
    """Command ``name`` with the fields ``data`` (no signing keys), or why it is not one."""
    if name not in COMMANDS:
        allowed = ", ".join(sorted(COMMANDS))
        return Refusal(Reason.INVALID, f"unknown command {name!r}; allowed: {allowed}")
    try:
        return COMMANDS[name].model_validate(data)
    except ValidationError as exc:
        return Refusal(Reason.INVALID, _validation_message(exc))


def _request_id(data: Mapping[str, Any]) -> str:
    raw = data.get("request_id", "")
    return raw if isinstance(raw, str) else ""


# -- the processor and its gate -----------------------------------------------------------------


class CommandProcessor:
    """Turns a command into a change and a reply; a bad one changes nothing.

    It takes any well-formed command: the daemon answers MQTT through a ``CommandGate``,
    which lets only signed, fresh commands through to ``apply``."""

    def __init__(self, target: CommandTarget, now: Callable[[], datetime]) -> None:
        self.target = target
        self.now = now
        self.accepted = 0
        self.rejected = 0

    async def __call__(self, name: str, payload: bytes) -> dict[str, Any]:
        data = parse_payload(payload)
        if isinstance(data, Refusal):
            reply = _error(name, "", data)
        else:
            reply = self.apply(name, data)
        if reply["ok"]:
            self.accepted += 1
        else:
            self.rejected += 1
        return reply

    def apply(self, name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The reply to command ``name`` with the fields ``data``, applied when valid."""
        request_id = _request_id(data)
        command = validate(name, data)
        if isinstance(command, Refusal):
            return _error(name, request_id, command)
        result = self._apply(command)
        if isinstance(result, Refusal):
            return _error(name, request_id, result)
        return {"command": name, "request_id": request_id, "ok": True, "result": result}

    def _apply(self, command: _Command) -> dict[str, Any] | Refusal:
        now = self.now()
        if isinstance(command, Ack):
            alert = self.target.acknowledge(command.alert_id)
            if alert is None:
                return Refusal(Reason.NOT_FOUND, f"no firing alert has id {command.alert_id}")
            return {"alert_id": command.alert_id, "alert": alert}
        if isinstance(command, SilenceCommand):
            comment = (
                f"{command.comment} (by {command.by} over MQTT)" if command.by else command.comment
            )
            ends = now + timedelta(minutes=command.minutes)
            if ends <= now:
                message = f"minutes: {command.minutes!r} is shorter than a microsecond"
                return Refusal(Reason.INVALID, message)
            try:
                silence_id = self.target.add_silence(dict(command.matchers), now, ends, comment)
            except SilenceLimitError as exc:
                return Refusal(Reason.CAPPED, str(exc))
            return {"silence_id": silence_id, "ends": ends.isoformat()}
        if isinstance(command, Expire):
            if not self.target.expire_silence(command.silence_id, now):
                return Refusal(Reason.NOT_FOUND, f"no active silence has id {command.silence_id}")
            return {"silence_id": command.silence_id}
        raise AssertionError(command)  # pragma: no cover - COMMANDS lists every type


def _seconds(value: object) -> float | None:
    """``value`` as Unix seconds, None when it is not a number (bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an int past the float range
        return math.inf if value > 0 else -math.inf


class CommandGate:
    """What the daemon answers MQTT commands with: a command reaches the processor only when
    signed with the shared secret, fresh, not a replay and within the rate limit. Without a
    secret every command is refused, and the reply says how to set one.

    Times here are the wall clock (``ts`` is the sender's Unix time), also in a replay; the
    processor dates silences on the session clock it was given."""

    def __init__(
        self,
        processor: CommandProcessor,
        secret: CommandSecret | None,
        *,
        topic_base: str,
        wall_clock: Callable[[], float] = time.time,
        window_seconds: float = SIGNATURE_WINDOW_SECONDS,
        silences_per_minute: int = SILENCES_PER_MINUTE,
        max_nonces: int = MAX_NONCES,
    ) -> None:
        self.processor = processor
        self.secret = secret
        self.topic_base = topic_base
        self.window_seconds = window_seconds
        self.silences_per_minute = silences_per_minute
        self._clock = wall_clock
        self._nonces = NonceMemory(max_nonces)
        self._silences = TokenBucket(silences_per_minute, silences_per_minute / 60.0)
        self.accepted = 0
        self.rejected = 0
        self.rejections: Counter[str] = Counter()  # refused commands by Reason value

    def topic(self, name: str) -> str:
        return command_topic(self.topic_base, name)

    async def __call__(self, name: str, payload: bytes) -> dict[str, Any]:
        reply = self._handle(name, payload)
        if reply["ok"]:
            self.accepted += 1
        else:
            self.rejected += 1
            self.rejections[reply["reason"]] += 1
        return reply

    def _handle(self, name: str, payload: bytes) -> dict[str, Any]:
        data = parse_payload(payload)
        if isinstance(data, Refusal):
            return _error(name, "", data)
        request_id = _request_id(data)
        refusal = self._authorise(name, data)
        if refusal is not None:
            return _error(name, request_id, refusal)
        command = {k: v for k, v in data.items() if k not in ENVELOPE}
        try:
            return self.processor.apply(name, command)
        except Exception as exc:  # a loop edge: a locked or full journal must not end the link
            log.exception("command_failed", command=name, request_id=request_id)
            return _error(name, request_id, Refusal(Reason.FAILED, f"not applied: {exc}"))

    def _authorise(self, name: str, data: dict[str, Any]) -> Refusal | None:
        if self.secret is None:
            return Refusal(Reason.DISABLED, COMMANDS_OFF)
        signature = data.get("hmac")
        if signature is None:
            return Refusal(
                Reason.SIGNATURE,
                "missing signature: a command needs ts, nonce and hmac "
                '(docs/delivery.md, "Signing a command")',
            )
        if not isinstance(signature, str) or not HMAC_HEX.fullmatch(signature.lower()):
            return Refusal(Reason.SIGNATURE, "hmac: expected 64 hex digits (HMAC-SHA256)")
        ts = _seconds(data.get("ts"))
        if ts is None:
            return Refusal(Reason.SIGNATURE, "ts: expected the Unix time in seconds, a number")
        nonce = data.get("nonce")
        if not isinstance(nonce, str) or not NONCE.fullmatch(nonce):
            return Refusal(Reason.SIGNATURE, "nonce: expected 8 to 64 letters, digits, '-' or '_'")
        topic = self.topic(name)
        fields = {k: v for k, v in data.items() if k != "hmac"}
        try:
            expected = self.secret.digest(topic, fields)
        except RecursionError:
            return Refusal(Reason.INVALID, "payload is not JSON: nested too deeply")
        if not hmac.compare_digest(expected, signature.lower()):
            return Refusal(
                Reason.SIGNATURE,
                f"bad signature: not the HMAC-SHA256 of {topic!r} and this payload under the "
                "daemon's command secret",
            )
        return self._fresh(name, ts, nonce)

    def _fresh(self, name: str, ts: float, nonce: str) -> Refusal | None:
        now = self._clock()
        skew = ts - now
        if not abs(skew) <= self.window_seconds:  # NaN too
            return Refusal(
                Reason.STALE,
                f"stale: ts is {skew:+.0f} s from the daemon's clock, more than "
                f"{self.window_seconds:g} s either way",
            )
        self._nonces.forget_before(now)
        if nonce in self._nonces:
            return Refusal(Reason.REPLAYED, f"replayed: nonce {nonce!r} was used already")
        if not self._nonces.remember(nonce, ts + self.window_seconds):
            return Refusal(
                Reason.RATE_LIMITED,
                f"rate limited: {len(self._nonces)} commands within "
                f"{2 * self.window_seconds:g} s; try again later",
            )
        if name == "silence":
            wait = self._silences.take(now)
            if wait > 0.0:
                return Refusal(
                    Reason.RATE_LIMITED,
                    f"rate limited: at most {self.silences_per_minute} silence commands a "
                    f"minute; the next in {math.ceil(wait)} s",
                )
        return None
