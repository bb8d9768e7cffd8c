"""Each component takes its config section as it is: the defaults are written once, in
monitor/config.py, and no component keeps a second settings class to copy them into.

Two checks: no class of a component's module gives defaults to the keys of the section the
component takes (a copy, by any name, that would let the two drift apart), and the pipeline
built from a config holds that config's very section objects (``is``), not equal copies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel, ValidationError

from monitor import bundled
from monitor.assembly import build_pipeline
from monitor.config import (
    DaemonConfig,
    FeedConfig,
    HedgeConfig,
    IbFeedConfig,
    JournalConfig,
    MqttConfig,
    PricingConfig,
    ScenariosConfig,
    SignalsConfig,
)
from monitor.delivery.service import Delivery
from monitor.feeds.ib import IbFeed
from monitor.feeds.replay import ReplayReader
from monitor.portfolio.model import load_portfolio
from monitor.rules.loader import load_rule_set
from monitor.sinks.journal import Journal

# Each component's module and the sections whose keys it reads (the second ones are values
# it takes from another section, as arguments).
COMPONENTS: tuple[tuple[str, tuple[type[BaseModel], ...]], ...] = (
    ("monitor.pricing.valuation", (PricingConfig,)),
    ("monitor.portfolio.book", (PricingConfig, ScenariosConfig)),
    ("monitor.portfolio.scenarios", (ScenariosConfig, PricingConfig)),
    ("monitor.signals.hedge", (HedgeConfig, PricingConfig, ScenariosConfig)),
    ("monitor.signals.board", (SignalsConfig,)),
    ("monitor.signals.breadth", (SignalsConfig,)),
    ("monitor.signals.quality", (SignalsConfig,)),
    ("monitor.signals.term_structure", (ScenariosConfig, SignalsConfig)),
    ("monitor.pipeline", (PricingConfig, ScenariosConfig, HedgeConfig, SignalsConfig)),
    ("monitor.feeds.ib", (IbFeedConfig,)),
    ("monitor.delivery.mqtt", (MqttConfig,)),
)

# The settings classes these components once copied their sections into.
GONE = (
    "monitor.pricing.valuation.PricingSettings",
    "monitor.portfolio.book.BetaSettings",
    "monitor.portfolio.scenarios.ScenarioSpec",
    "monitor.signals.hedge.HedgeSettings",
    "monitor.signals.board.SignalSettings",
    "monitor.signals.breadth.BreadthSettings",
    "monitor.signals.quality.QualitySettings",
    "monitor.feeds.ib.IbSettings",
    "monitor.delivery.mqtt.MqttSettings",
    "monitor.live.settings_from",
    "monitor.assembly.signal_settings",
)


def _defaulted_fields(cls: type) -> set[str]:
    """The fields of a dataclass or pydantic model that have a default."""
    if dataclasses.is_dataclass(cls):
        return {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        }
    if issubclass(cls, BaseModel):
        return {n for n, f in cls.model_fields.items() if not f.is_required()}
    return set()


def _names_a_key(field: str, key: str) -> bool:
    """``lookback_bars`` copies ``breadth_lookback_bars`` as much as a field of its own name."""
    return field == key or ("_" in field and key.endswith("_" + field))


def copies_of(module: ModuleType, sections: tuple[type[BaseModel], ...]) -> list[str]:
    """Classes of ``module`` giving defaults to two or more keys of ``sections`` (a view or
    a status that reports one configured value, such as the hedge band, has no defaults)."""
    keys = {key: section.__name__ for section in sections for key in section.model_fields}
    found = []
    for name, cls in vars(module).items():
        if not inspect.isclass(cls) or cls.__module__ != module.__name__:
            continue
        copied = sorted(
            f"{keys[key]}.{key}"
            for field in _defaulted_fields(cls)
            for key in keys
            if _names_a_key(field, key)
        )
        if len(copied) >= 2:
            found.append(f"{module.__name__}.{name} copies {copied}")
    return found


@pytest.mark.parametrize(("module_name", "sections"), COMPONENTS)
def test_no_component_writes_the_defaults_of_its_section_again(
    module_name: str, sections: tuple[type[BaseModel], ...]
) -> None:
    found = copies_of(importlib.import_module(module_name), sections)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("dotted", GONE)
def test_the_settings_copies_are_gone(dotted: str) -> None:
    module_name, _, name = dotted.rpartition(".")
    assert not hasattr(importlib.import_module(module_name), name)


def test_the_check_finds_a_copy_under_other_names() -> None:
    """A class like the old BreadthSettings (the section's keys without their prefix)."""

    @dataclass(frozen=True)
    class BreadthSettings:
        lookback_bars: int = 6
        ad_threshold_issues: float = 200.0

    module = ModuleType("fake")
    BreadthSettings.__module__ = "fake"
    module.BreadthSettings = BreadthSettings  # type: ignore[attr-defined]
    (found,) = copies_of(module, (SignalsConfig,))
    assert found.startswith("fake.BreadthSettings copies ")
    assert "SignalsConfig.breadth_ad_threshold_issues" in found
    assert "SignalsConfig.breadth_lookback_bars" in found


@pytest.mark.parametrize(
    "section", [PricingConfig(), ScenariosConfig(), HedgeConfig(), SignalsConfig()]
)
def test_sections_are_frozen(section: BaseModel) -> None:
    name = next(iter(type(section).model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(section, name, getattr(section, name))


def config_with_every_section_changed(tmp_path: Path) -> DaemonConfig:
    return DaemonConfig(
        feed=FeedConfig(session=bundled.SESSION),
        portfolio=bundled.PORTFOLIO,
        rules=[bundled.RULES],
        journal=JournalConfig(path=tmp_path / "journal.sqlite"),
        pricing=PricingConfig(rate=0.035, vix_points_per_spx_pct=-1.3),
        scenarios=ScenariosConfig(spx_moves_pct=[-5.0, 0.0], vx_response_half_life_days=45.0),
        hedge=HedgeConfig(band_low_pct=10.0, band_high_pct=30.0),
        signals=SignalsConfig(bar_minutes=15, breadth_lookback_bars=8, quality_min_bars=10),
        mqtt=MqttConfig(enabled=True, port=1),
    )


def test_build_pipeline_hands_each_component_its_section_itself(tmp_path: Path) -> None:
    config = config_with_every_section_changed(tmp_path)
    universe = ReplayReader(bundled.SESSION).header.instruments
    portfolio = load_portfolio(config.portfolio)
    pipeline = build_pipeline(
        config, portfolio, load_rule_set(config.rules), universe, journal=None
    )
    assert pipeline.pricing is config.pricing
    assert pipeline.valuer.config is config.pricing
    assert pipeline.scenarios.config is config.scenarios
    assert pipeline.hedge is config.hedge
    assert pipeline.signals.config is config.signals
    assert pipeline.signals.breadth.config is config.signals
    assert pipeline.signals.quality.config is config.signals
    # The values a component takes from another section reach it unchanged.
    assert pipeline.scenarios.rate == config.pricing.rate
    assert pipeline.scenarios.spx_moves_pct == (-5.0, 0.0)
    pipeline.replace_portfolio(portfolio, universe)  # a traded book: the same section again
    assert pipeline.valuer.config is config.pricing

    journal = Journal(config.journal.path)
    delivery = Delivery(config, journal, pipeline, now=lambda: datetime(2026, 3, 3, tzinfo=UTC))
    assert delivery.link is not None
    assert delivery.link.config is config.mqtt
    assert delivery.link.base == "condor/default"
    assert delivery.link.client_id == "condor-monitor-default"
    asyncio.run(journal.close())


def test_the_live_feed_takes_its_section_itself() -> None:
    section = IbFeedConfig(kind="ib", market_data_type="delayed", reconnect_max_seconds=4.0)
    feed = IbFeed(section, [])
    assert feed.config is section
    assert feed.market_data_type.name == "DELAYED"
    assert (feed.backoff.initial_seconds, feed.backoff.cap_seconds) == (1.0, 4.0)
