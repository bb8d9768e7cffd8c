"""Builds a pipeline from a config: the one place the config's sections become the
settings of pricing, scenarios, hedge, signals and events. Replay, backtest, live and the
benchmarks all build theirs here, so a backtest values the book as the run it predicts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import structlog

from monitor.config import DaemonConfig, SignalsConfig
from monitor.domain.instruments import Instrument
from monitor.errors import ConfigError
from monitor.feeds.replay import ReplayReader
from monitor.pipeline import Pipeline
from monitor.portfolio.book import BetaSettings
from monitor.portfolio.model import Portfolio
from monitor.portfolio.scenarios import ScenarioSpec
from monitor.pricing.valuation import PricingSettings
from monitor.rules.loader import RuleSet
from monitor.signals.board import SignalSettings
from monitor.signals.breadth import BreadthSettings
from monitor.signals.events import BUNDLED_EVENTS, load_events
from monitor.signals.hedge import HedgeSettings
from monitor.signals.quality import QualitySettings
from monitor.signals.warmup import warm_up
from monitor.sinks.journal import Journal

log = structlog.get_logger(__name__)


def check_session(
    portfolio: Portfolio, reader: ReplayReader, config_path: Path | None = None
) -> None:
    """Raises ConfigError when the session cannot value the portfolio: a leg it does not
    declare (named by its field), or no SPX or VIX index."""
    declared = reader.header.instruments
    for s_index, strategy in enumerate(portfolio.strategies):
        for l_index, leg in enumerate(strategy.legs):
            if leg.instrument.id not in declared:
                raise ConfigError(
                    portfolio.source,
                    f"field strategies[{s_index}].legs[{l_index}].contract: "
                    f"{leg.instrument.id!r} is not an instrument of the session "
                    f"{reader.path.name} (unknown instrument)",
                )
    for needed in ("SPX", "VIX"):
        if needed not in declared:
            where = config_path or reader.path
            raise ConfigError(where, f"the session declares no {needed} index, which pricing needs")


def build_pipeline(
    config: DaemonConfig,
    portfolio: Portfolio,
    rules: RuleSet,
    universe: Mapping[str, Instrument],
    *,
    journal: Journal | None,
    bad_lines: Counter[str] | None = None,
) -> Pipeline:
    pricing = config.pricing
    return Pipeline(
        universe=dict(universe),
        portfolio=portfolio,
        rules=rules.rules,
        inhibit_rules=rules.inhibit_rules,
        journal=journal,
        restore_alert_state=config.journal.restore_alert_state,
        pricing=PricingSettings(
            rate=pricing.rate,
            vix_option_fallback_vol=pricing.vix_option_fallback_vol,
            spx_fallback_vol_per_vix=pricing.spx_fallback_vol_per_vix,
            max_quote_age_seconds=pricing.max_quote_age_seconds,
        ),
        bad_lines=bad_lines,
        beta=BetaSettings(
            vix_points_per_spx_pct=pricing.vix_points_per_spx_pct,
            vx_response_half_life_days=config.scenarios.vx_response_half_life_days,
        ),
        events=load_events(config.events.file or BUNDLED_EVENTS),
        signals=signal_settings(config.signals),
        hedge=HedgeSettings(
            band_low_pct=config.hedge.band_low_pct,
            band_high_pct=config.hedge.band_high_pct,
            long_strike_offset_points=(
                config.hedge.long_strike_offset_points[0],
                config.hedge.long_strike_offset_points[1],
            ),
            spread_width_points=config.hedge.spread_width_points,
            vx_response_half_life_days=config.scenarios.vx_response_half_life_days,
            rate=pricing.rate,
        ),
        scenarios=ScenarioSpec(
            spx_moves_pct=tuple(config.scenarios.spx_moves_pct),
            vol_shocks_points=tuple(config.scenarios.vol_shocks_points),
            vx_response_half_life_days=config.scenarios.vx_response_half_life_days,
            decay_days=config.scenarios.decay_days,
        ),
    )


def signal_settings(config: SignalsConfig) -> SignalSettings:
    return SignalSettings(
        bar_minutes=config.bar_minutes,
        weekly_vix_futures=config.weekly_vix_futures,
        breadth=BreadthSettings(
            lookback_bars=config.breadth_lookback_bars,
            ad_threshold_issues=config.breadth_ad_threshold_issues,
            near_extreme_pct=config.breadth_near_extreme_pct,
            min_spx_move_pct=config.breadth_min_spx_move_pct,
        ),
        quality=QualitySettings(
            lookback_bars=config.quality_lookback_bars, min_bars=config.quality_min_bars
        ),
    )


def warm_up_signals(pipeline: Pipeline, sessions: list[Path], until: datetime) -> None:
    """Primes the bar signals from recorded sessions (logged; a bad file is a ConfigError)."""
    if not sessions:
        return
    report = warm_up(pipeline.signals, sessions, until)
    log.info("signals_warm_up", files=report.files, events=report.events, bars=report.bars)
