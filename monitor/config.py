"""Daemon configuration (TOML), validated with pydantic; unknown keys are errors.

Relative paths are resolved against the directory of the config file that names them.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from monitor.tomlfile import load_toml


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base")
    path = value.expanduser()
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
    vx_response_half_life_days: Annotated[float, Field(gt=0.0)] = 60.0
    decay_days: Annotated[float, Field(ge=0.0, le=30.0)] = 0.0

    @field_validator("spx_moves_pct")
    @classmethod
    def _above_minus_100(cls, value: list[float]) -> list[float]:
        if any(m <= -100.0 for m in value):
            raise ValueError("an SPX move must be above -100 %")
        return value


class JournalConfig(_Section):
    path: Path
    # Take back the firing alerts of the previous run, so a restart does not page again.
    restore_alert_state: bool = True

    _paths = field_validator("path")(_resolve)


class MetricsConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9464

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


class DaemonConfig(_Section):
    instance: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")] = "default"
    feed: FeedConfig
    portfolio: Path
    rules: Annotated[list[Path], Field(min_length=1)]
    pricing: PricingConfig = PricingConfig()
    scenarios: ScenariosConfig = ScenariosConfig()
    journal: JournalConfig
    metrics: MetricsConfig = MetricsConfig()
    console: ConsoleConfig = ConsoleConfig()
    alerts_out: Path | None = None

    _paths = field_validator("portfolio")(_resolve)

    @field_validator("alerts_out")
    @classmethod
    def _optional_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @field_validator("rules")
    @classmethod
    def _rule_paths(cls, value: list[Path], info: ValidationInfo) -> list[Path]:
        return [_resolve(p, info) for p in value]


def load_config(path: Path) -> DaemonConfig:
    return load_toml(path, DaemonConfig, context={"base": path.resolve().parent})
