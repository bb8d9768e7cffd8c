"""Daemon configuration (TOML), validated with pydantic; unknown keys are errors.

Each section is a frozen model with its defaults written here once, and the component it
configures takes it as it is (``[pricing]`` the Valuer, ``[hedge]`` the hedge view, ...): there
is no second settings class to copy it into. So this module imports no component (a domain
value at most).
Relative paths are resolved against the directory of the config file that names them.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.domain.quotes import DELAYED_DATA_MINUTES
from monitor.tomlfile import load_toml


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base")
    try:
        path = value.expanduser()
    except RuntimeError:  # ~name of no such user, or no home directory to expand ~ to
        raise ValueError(f"cannot expand '~' in {str(value)!r}") from None
    if not path.is_absolute() and isinstance(base, Path):
        path = base / path
    return path


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeedConfig(_Section):
    kind: Literal["replay"] = "replay"
    session: Path = Field(description="replay file (.jsonl or .jsonl.gz)")
    speed: Annotated[
        float, Field(ge=0.0, description="0: as fast as possible; N: N x real time")
    ] = 0.0

    _paths = field_validator("session")(_resolve)


class IbFeedConfig(_Section):
    """A live Interactive Brokers feed, read-only (docs/ib.md)."""

    kind: Literal["ib"]
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535, description="4001 Gateway, 7496 TWS")] = 4001
    client_id: Annotated[int, Field(ge=0, le=999_999)] = 17
    client_id_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    account: str = ""
    market_data_type: Literal["live", "frozen", "delayed", "delayed_frozen"] = "live"
    fall_back_to_delayed: bool = True
    # How far behind IB's delayed quotes are (10-15 minutes by exchange): added to their age.
    delayed_data_minutes: Annotated[float, Field(ge=0.0, le=60.0)] = DELAYED_DATA_MINUTES
    max_lines: Annotated[int, Field(ge=1, le=10_000)] = 90
    import_positions: bool = True
    vix_futures: Annotated[int, Field(ge=2, le=9)] = 4
    record_dir: Path | None = None
    evaluation_interval_seconds: Annotated[float, Field(gt=0.0, le=60.0)] = 15.0
    connect_timeout_seconds: Annotated[float, Field(gt=0.0, le=120.0)] = 10.0
    # At start, how long IB may take to send the recent bars of each signal series
    # ([signals] ib_history); the series are asked for together, the rules run meanwhile.
    history_timeout_seconds: Annotated[float, Field(gt=0.0, le=300.0)] = 30.0
    # Reconnection waits about a second after a loss, then doubles up to this cap (jittered).
    reconnect_max_seconds: Annotated[float, Field(ge=1.0, le=600.0)] = 10.0
    # In the session, no market data for this long while subscribed: resubscribe; as long
    # again: reconnect. 0 turns the watch off.
    silent_seconds: Annotated[float, Field(ge=0.0, le=3600.0)] = 30.0
    # Outside the SPX options session (weekends, holidays, nights; early closes from the
    # exchange calendar) the market data subscriptions are cancelled and the connection kept;
    # they are made again this long before the next open.
    idle_outside_session: bool = True
    wake_minutes_before_open: Annotated[float, Field(ge=0.0, le=240.0)] = 15.0
    idle_minutes_after_close: Annotated[float, Field(ge=0.0, le=240.0)] = 15.0
    # The strike ladder (docs/ib.md, "Strike ladder"): per option expiry the book holds,
    # call+put pairs at the listed strikes nearest the money (put-call parity for the
    # forward) and OTM wings out past the book's strikes (the smile), in the lines the book,
    # the indexes and the VX curve leave of max_lines; re-centred when the underlying has
    # moved more than smile_recentre_steps strike steps.
    smile_ladder: bool = True
    smile_ladder_pairs: Annotated[int, Field(ge=1, le=10)] = 3
    smile_ladder_wings: Annotated[int, Field(ge=0, le=20)] = 5
    smile_recentre_steps: Annotated[float, Field(ge=1.0, le=50.0)] = 3.0

    @field_validator("record_dir")
    @classmethod
    def _record(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)


def _feed_kind(value: object) -> str:
    kind = value.get("kind", "replay") if isinstance(value, dict) else getattr(value, "kind", "")
    return str(kind)


Feed = Annotated[
    Annotated[FeedConfig, Tag("replay")] | Annotated[IbFeedConfig, Tag("ib")],
    Discriminator(_feed_kind),
]


class PricingConfig(_Section):
    rate: Annotated[float, Field(ge=-0.05, le=0.25, description="risk-free rate, decimal, cc")] = (
        0.04
    )
    vix_option_fallback_vol: Annotated[float, Field(gt=0.05, le=5.0)] = 0.9
    spx_fallback_vol_per_vix: Annotated[float, Field(gt=0.2, le=3.0)] = 1.0
    max_quote_age_seconds: Annotated[float, Field(gt=0.0, description="older quotes are stale")] = (
        300.0
    )
    vix_points_per_spx_pct: Annotated[float, Field(ge=-10.0, le=10.0)] = -1.0
    # "quotes": each quoted leg at the vol of its own mid; "svi": every option of an expiry
    # at the vol of a raw SVI smile fitted to that expiry's quotes (README, "Units").
    smile: Literal["quotes", "svi"] = "svi"
    # "svi": each refit blends the previous fit with this half-life in seconds of market
    # time (0: every fit from the quotes alone); a real move restarts it (pricing/smiles.py).
    smile_half_life_seconds: Annotated[float, Field(ge=0.0, le=3600.0)] = 30.0
    # "svi": how long the last good fit of an expiry stays in use when refits fail, seconds.
    smile_max_fit_age_seconds: Annotated[float, Field(ge=0.0, le=3600.0)] = 60.0


def _above_minus_100(value: list[float]) -> list[float]:
    """SPX moves in percent: each above -100 % (the index cannot go below zero)."""
    if any(m <= -100.0 for m in value):
        raise ValueError("an SPX move must be above -100 %")
    return value


class ScenariosConfig(_Section):
    spx_moves_pct: Annotated[list[float], Field(min_length=1, max_length=41)] = [
        float(m) for m in range(-10, 6)
    ]
    vol_shocks_points: Annotated[list[float], Field(min_length=1, max_length=21)] = [
        -5.0,
        0.0,
        5.0,
        10.0,
        15.0,
        20.0,
        25.0,
        30.0,
    ]
    # The tenor at which a VIX future's response to a spot-VIX move halves, in calendar days
    # (signals/term_structure.py, vx_response); the hedge and the beta-weighted delta use it too.
    vx_response_half_life_days: Annotated[float, Field(gt=0.0)] = 60.0
    decay_days: Annotated[float, Field(ge=0.0, le=30.0)] = 0.0

    _moves = field_validator("spx_moves_pct")(_above_minus_100)


class StressConfig(_Section):
    """The vol-coordinated stress (portfolio/stress.py; docs/rules.md, "Stress")."""

    spx_moves_pct: Annotated[list[float], Field(min_length=1, max_length=21)] = [
        -10.0,
        -5.0,
        -3.0,
        -2.0,
        2.0,
        3.0,
        5.0,
    ]
    # ln(VIX after / before) per unit of SPX log return, for falls and for rises: least
    # squares through zero on 2,514 daily closes, 2012-09-28 to 2022-09-27 (Cboe's VIX
    # history, SPX closes; tests/fixtures/history/spx_vix_daily.csv).
    vix_log_beta_down: Annotated[float, Field(ge=-20.0, le=0.0)] = -5.95
    vix_log_beta_up: Annotated[float, Field(ge=-20.0, le=0.0)] = -4.87
    # An SPX option's implied vol moves by the VIX change x (vol_tenor_days / its days to
    # expiry) ** vol_tenor_exponent, at most vol_tenor_cap times the VIX change.
    vol_tenor_days: Annotated[float, Field(gt=0.0)] = 30.0
    vol_tenor_exponent: Annotated[float, Field(ge=0.0, le=2.0)] = 0.5
    vol_tenor_cap: Annotated[float, Field(gt=0.0, le=10.0)] = 2.0

    @field_validator("spx_moves_pct")
    @classmethod
    def _moves(cls, value: list[float]) -> list[float]:
        if -5.0 not in value:
            raise ValueError("the moves must include -5 (the stress.* variables read it)")
        return _above_minus_100(value)


class HedgeConfig(_Section):
    """The hedge-ratio band and the call spreads the sizing suggests (docs/rules.md)."""

    band_low_pct: Annotated[float, Field(ge=0.0, le=200.0)] = 15.0
    band_high_pct: Annotated[float, Field(ge=0.0, le=200.0)] = 25.0
    long_strike_offset_points: Annotated[list[float], Field(min_length=2, max_length=2)] = [
        3.0,
        5.0,
    ]
    spread_width_points: Annotated[float, Field(gt=0.0, le=50.0)] = 5.0

    @model_validator(mode="after")
    def _ordered(self) -> HedgeConfig:
        if self.band_low_pct >= self.band_high_pct:
            raise ValueError("band_low_pct must be below band_high_pct")
        low, high = self.long_strike_offset_points
        if not 0.0 <= low <= high:
            raise ValueError("long_strike_offset_points must be [low, high] with 0 <= low <= high")
        return self


class SignalsConfig(_Section):
    """Bars, MACD/RSI, breadth, hedge quality, and the warm-up (docs/rules.md, "Signals")."""

    bar_minutes: Literal[1, 5, 15] = 5
    weekly_vix_futures: bool = False  # weekly VIX futures join the VX1..VX4 curve
    breadth_lookback_bars: Annotated[int, Field(ge=2, le=500)] = 6
    breadth_ad_threshold_issues: Annotated[float, Field(gt=0.0)] = 200.0
    breadth_near_extreme_pct: Annotated[float, Field(ge=0.0, le=5.0)] = 0.1
    breadth_min_spx_move_pct: Annotated[float, Field(ge=0.0, le=10.0)] = 0.1
    quality_lookback_bars: Annotated[int, Field(ge=3, le=2000)] = 24
    quality_min_bars: Annotated[int, Field(ge=3, le=2000)] = 12
    # Recorded sessions (replay files) read before the feed starts, to prime the bars.
    warm_up: list[Path] = []
    # Live: also the recordings of [feed] record_dir from this many days back (0: none).
    warm_up_recording_days: Annotated[int, Field(ge=0, le=30)] = 3
    # Live: IB historical bars for series the recordings left short of MACD's 34 bars.
    ib_history: bool = True

    @field_validator("warm_up")
    @classmethod
    def _warm_up(cls, value: list[Path], info: ValidationInfo) -> list[Path]:
        return [_resolve(p, info) for p in value]

    @model_validator(mode="after")
    def _bars(self) -> SignalsConfig:
        if self.quality_min_bars > self.quality_lookback_bars:
            raise ValueError("quality_min_bars must not exceed quality_lookback_bars")
        return self


class EventsConfig(_Section):
    """The calendar of scheduled events (FOMC, CPI, PPI): the bundled one, or your copy."""

    file: Path | None = None  # default: monitor/bundled/events.toml

    @field_validator("file")
    @classmethod
    def _file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)


class JournalConfig(_Section):
    path: Path
    # Take back the firing alerts of the previous run, so a restart does not page again.
    restore_alert_state: bool = True

    _paths = field_validator("path")(_resolve)


class MetricsConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9464
    # /readyz: during market hours, market data older than this (session seconds) is stale.
    ready_max_data_age_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 60.0

    @field_validator("host")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address (e.g. 127.0.0.1)") from None
        return value


class ConsoleConfig(_Section):
    enabled: bool = True
    colour: Literal["auto", "always", "never"] = "auto"


Severity = Literal["info", "warning", "critical"]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


def _optional_path(value: Path | None, info: ValidationInfo) -> Path | None:
    return None if value is None else _resolve(value, info)


class MqttConfig(_Section):
    """The MQTT link: alerts, liveness, the book's state and commands (docs/delivery.md)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = "condor"
    client_id: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = None
    username: str | None = None
    # The password: a file, or a systemd credential (LoadCredential=) by name. Never logged.
    password_file: Path | None = None
    password_credential: Name | None = None
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    keepalive_seconds: Annotated[int, Field(ge=5, le=3600)] = 30
    state_interval_seconds: Annotated[float, Field(ge=0.5, le=3600.0)] = 5.0
    severities: list[Severity] = []  # alerts of these severities (all when empty)
    send_resolved: bool = True
    # The shared secret commands are signed with (HMAC-SHA256): a file, or a systemd
    # credential by name; at least 32 characters. Without one every command is refused.
    command_secret_file: Path | None = None
    command_secret_credential: Name | None = None

    _paths = field_validator(
        "password_file", "tls_ca_file", "tls_cert_file", "tls_key_file", "command_secret_file"
    )(_optional_path)

    @model_validator(mode="after")
    def _one_password(self) -> MqttConfig:
        if self.password_file is not None and self.password_credential is not None:
            raise ValueError("give password_file or password_credential, not both")
        if self.command_secret_file is not None and self.command_secret_credential is not None:
            raise ValueError("give command_secret_file or command_secret_credential, not both")
        if (self.password_file or self.password_credential) and not self.username:
            raise ValueError("a password needs a username")
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_key_file needs tls_cert_file")
        return self


class ChannelConfig(_Section):
    """A phone or chat channel: the Apprise URLs with ``tags``, and what it receives."""

    name: Name
    tags: list[str] = []  # Apprise tags in the credentials file (all URLs when empty)
    severities: list[Severity] = []  # all when empty
    match: dict[str, str] = {}  # label matchers; "alertname" is the rule
    send_resolved: bool = True
    group_window_seconds: Annotated[float, Field(ge=0.0, le=600.0)] = 20.0
    max_group: Annotated[int, Field(ge=1, le=100)] = 20
    min_interval_seconds: Annotated[float, Field(ge=0.0, le=3600.0)] = 2.0
    # One send to one URL fails after this long; its thread is abandoned (see docs/delivery.md)
    timeout_seconds: Annotated[float, Field(gt=0.0, le=600.0)] = 30.0


class NotifyConfig(_Section):
    """Phone and chat through Apprise; URLs (with their secrets) in ``credentials``."""

    credentials: Path
    channels: Annotated[list[ChannelConfig], Field(min_length=1)]

    _paths = field_validator("credentials")(_resolve)

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[ChannelConfig]) -> list[ChannelConfig]:
        names = [c.name for c in value]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique: {names}")
        return value


class DeliveryConfig(_Section):
    """Retries and the outbox, for every remote channel."""

    retry_initial_seconds: Annotated[float, Field(gt=0.0, le=60.0)] = 1.0
    retry_max_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 60.0
    shutdown_flush_seconds: Annotated[float, Field(ge=0.0, le=300.0)] = 10.0
    prune_delivered_after_days: Annotated[float, Field(gt=0.0)] = 7.0


class DaemonConfig(_Section):
    instance: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")] = "default"
    feed: Feed
    portfolio: Path
    rules: Annotated[list[Path], Field(min_length=1)]
    pricing: PricingConfig = PricingConfig()
    scenarios: ScenariosConfig = ScenariosConfig()
    stress: StressConfig = StressConfig()
    hedge: HedgeConfig = HedgeConfig()
    signals: SignalsConfig = SignalsConfig()
    events: EventsConfig = EventsConfig()
    journal: JournalConfig
    metrics: MetricsConfig = MetricsConfig()
    console: ConsoleConfig = ConsoleConfig()
    alerts_out: Path | None = None
    mqtt: MqttConfig = MqttConfig()
    notify: NotifyConfig | None = None
    delivery: DeliveryConfig = DeliveryConfig()

    _paths = field_validator("portfolio")(_resolve)
    _out = field_validator("alerts_out")(_optional_path)

    @field_validator("rules")
    @classmethod
    def _rule_paths(cls, value: list[Path], info: ValidationInfo) -> list[Path]:
        return [_resolve(p, info) for p in value]


def load_config(path: Path) -> DaemonConfig:
    return load_toml(path, DaemonConfig, context={"base": path.resolve().parent})
