"""Builds a pipeline from a config: the one place the config's sections are handed to
pricing, scenarios, hedge, signals and events, each section as it is. Replay, backtest, live and the
benchmarks all build theirs here, so a backtest values the book as the run it predicts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import structlog

from monitor.config import DaemonConfig
from monitor.domain.instruments import Instrument
from monitor.errors import ConfigError
from monitor.feeds.replay import ReplayReader
from monitor.pipeline import Pipeline
from monitor.portfolio.model import Portfolio
from monitor.rules.loader import RuleSet
from monitor.signals.events import BUNDLED_EVENTS, load_events
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
    """The pipeline of ``config``: each section goes to its component as it is."""
    return Pipeline(
        universe=dict(universe),
        portfolio=portfolio,
        rules=rules.rules,
        inhibit_rules=rules.inhibit_rules,
        journal=journal,
        restore_alert_state=config.journal.restore_alert_state,
        pricing=config.pricing,
        bad_lines=bad_lines,
        events=load_events(config.events.file or BUNDLED_EVENTS),
        signals=config.signals,
        hedge=config.hedge,
        scenarios=config.scenarios,
        stress=config.stress,
    )


def warm_up_signals(pipeline: Pipeline, sessions: list[Path], until: datetime) -> None:
    """Primes the bar signals from recorded sessions (logged; a bad file is a ConfigError)."""
    if not sessions:
        return
    report = warm_up(pipeline.signals, sessions, until)
    log.info("signals_warm_up", files=report.files, events=report.events, bars=report.bars)
