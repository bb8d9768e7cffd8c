"""`condor-monitor check-config` loads everything a run would and names what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from monitor.cli import EXIT_BAD_INPUT, EXIT_OK, main

EXAMPLE = REPO / "deploy" / "examples" / "condor-monitor.toml"
BUNDLED = REPO / "monitor" / "bundled"


def config_text(tmp_path: Path) -> str:
    """The example config with absolute paths, so a copy works from tmp_path."""
    return (
        EXAMPLE.read_text()
        .replace("../../monitor/bundled/portfolio.toml", str(BUNDLED / "portfolio.toml"))
        .replace('"../../rules"', f'"{REPO / "rules"}"')
        .replace("../../monitor/bundled/sessions", str(BUNDLED / "sessions"))
        .replace("../../state/journal.sqlite", str(tmp_path / "journal.sqlite"))
    )


def test_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == EXIT_OK
    assert "OK" in capsys.readouterr().out


def write_rule(tmp_path: Path, expr: str) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: R\n"
        f"        expr: {expr}\n        severity: info\n        value: vix\n"
        "        unit: VIX points\n        summary: x\n"
    )
    return rules


def notify(directory: Path, credentials: str | None, severities: str) -> str:
    """A [notify] section; its Apprise credentials file holds ``credentials`` (None: absent)."""
    path = directory / "apprise.yml"
    if credentials is not None:
        path.write_text(credentials)
    return (
        f'\n[notify]\ncredentials = "{path}"\n[[notify.channels]]\nname = "phone"\n'
        f"severities = {severities}\n"
    )


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (
            lambda t, p: t.replace("[feed]", "[feed]\nfeeed_speed = 3"),
            ["field feed.feeed_speed: unknown field"],
        ),
        (
            lambda t, p: t.replace("port = 9464", "port = 70000"),
            ["field metrics.port", "less than or equal to 65535"],
        ),
        (
            lambda t, p: t.replace("port = 9464", 'port = "ninety"'),
            ["field metrics.port", "valid integer"],
        ),
        (
            lambda t, p: t.replace('host = "127.0.0.1"', 'host = "localhost:80"'),
            ["field metrics.host", "not an IP address"],
        ),
        (
            lambda t, p: t.replace("speed = 0 ", "speed = -2 "),
            ["field feed.speed", "greater than or equal to 0"],
        ),
        (
            lambda t, p: t.replace('kind = "replay"', 'kind = "carrier-pigeon"'),
            ["field feed.kind", "'replay'"],
        ),
        (
            lambda t, p: t.replace('instance = "example"', 'instance = "My Desk"'),
            ["field instance", "pattern"],
        ),
        (
            lambda t, p: t.replace("rate = 0.04", "rate = 4.0"),
            ["field pricing.rate", "less than or equal to 0.25"],
        ),
        (lambda t, p: t.replace("[journal]", "[journal_]"), ["field journal: Field required"]),
        (
            lambda t, p: t.replace("vol-spike-2026-03-03.jsonl.gz", "missing.jsonl.gz"),
            ["missing.jsonl.gz", "no such replay file"],
        ),
        (
            lambda t, p: t.replace(str(BUNDLED / "portfolio.toml"), str(p / "nope.toml")),
            ["nope.toml", "no such file"],
        ),
        (
            lambda t, p: t.replace(f'"{REPO / "rules"}"', f'"{write_rule(p, "vix >> 2")}"'),
            ["r.yaml:4", "rule 'R'", "field expr", "column"],
        ),
        (
            lambda t, p: t.replace(f'"{REPO / "rules"}"', f'"{write_rule(p, "vx9 > 2")}"'),
            ["rule 'R'", "unknown variable 'vx9'"],
        ),
        (lambda t, p: t.replace("[metrics]", "[metrics"), ["not valid TOML", "line"]),
        (
            lambda t, p: t.replace("spx_moves_pct = [-10,", "spx_moves_pct = [-120,"),
            ["field scenarios.spx_moves_pct", "above -100 %"],
        ),
        (
            lambda t, p: t.replace("decay_days = 0 ", "decay_days = -1 "),
            ["field scenarios.decay_days", "greater than or equal to 0"],
        ),
        (
            lambda t, p: t.replace("max_quote_age_seconds = 300", "max_quote_age_seconds = 0"),
            ["field pricing.max_quote_age_seconds", "greater than 0"],
        ),
        (
            lambda t, p: t.replace("# password_credential", "password_credential"),
            ["field mqtt", "a password needs a username"],
        ),
        (
            lambda t, p: t.replace("state_interval_seconds = 5", "state_interval_seconds = 0"),
            ["field mqtt.state_interval_seconds", "greater than or equal to 0.5"],
        ),
        (
            lambda t, p: t + notify(p, "urls:\n  - json://127.0.0.1:9/hook\n", '["urgent"]'),
            ["field notify.channels[0].severities[0]", "'info', 'warning' or 'critical'"],
        ),
        (
            lambda t, p: t + notify(p, "urls:\n  - nosuchservice://x\n", '["critical"]'),
            ["apprise.yml", "field notify.credentials", "no valid Apprise URL"],
        ),
        (
            lambda t, p: t + notify(p, None, '["critical"]'),
            ["field notify.credentials", "not found"],
        ),
        (
            lambda t, p: t.replace("retry_max_seconds = 60", "retry_max_seconds = -1"),
            ["field delivery.retry_max_seconds", "greater than 0"],
        ),
    ],
)
def test_bad_config_is_rejected_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit, fragments: list[str]
) -> None:
    text = config_text(tmp_path)
    changed = edit(text, tmp_path)
    assert changed != text
    path = tmp_path / "condor-monitor.toml"
    path.write_text(changed)
    assert main(["check-config", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err


def test_unknown_portfolio_instrument_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    portfolio = tmp_path / "p.toml"
    portfolio.write_text((BUNDLED / "portfolio.toml").read_text().replace("C27", "C28"))
    path = tmp_path / "c.toml"
    path.write_text(config_text(tmp_path).replace(str(BUNDLED / "portfolio.toml"), str(portfolio)))
    assert main(["check-config", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "strategies[1].legs[2].contract" in err
    assert "'VIX 20260318 C28' is not an instrument of the session" in err


def ib_config(tmp_path: Path, feed: str) -> Path:
    text = config_text(tmp_path)
    start = text.index("[feed]")
    end = text.index("\n[", start + 1)
    path = tmp_path / "ib.toml"
    path.write_text(text[:start] + '[feed]\nkind = "ib"\n' + feed + text[end:])
    return path


def test_ib_feed_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = ib_config(tmp_path, 'port = 4002\nclient_id = 3\nrecord_dir = "recordings"\n')
    assert main(["check-config", str(good)]) == EXIT_OK
    assert "IB feed 127.0.0.1:4002 (client id 3)" in capsys.readouterr().out
    bad = ib_config(tmp_path, 'port = 0\nsession = "x.jsonl"\n')
    assert main(["check-config", str(bad)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "field feed.port: Input should be greater than or equal to 1" in err
    assert "field feed.session: unknown field" in err  # a replay key in an IB feed


def test_record_needs_a_live_feed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["record", "--config", str(EXAMPLE), "--out", str(tmp_path)]) == EXIT_BAD_INPUT
    assert 'record needs a live feed ([feed] kind = "ib")' in capsys.readouterr().err
