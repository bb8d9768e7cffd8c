"""`condor-monitor backtest` and `rules check`: a timeline with the book, counts per rule."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from conftest import REPO, WriteSession, header, t

from monitor import bundled
from monitor.cli import EXIT_BAD_INPUT, EXIT_OK, main
from monitor.rules.loader import load_rule_file

ALWAYS = """
groups:
  - name: g
    rules:
      - alert: SpxBelow6790
        expr: spx < 6790
        severity: info
        value: spx
        unit: index points
        summary: "SPX {spx:,.2f}"
"""


def calm_and_dip(write_session: WriteSession, name: str) -> Path:
    lines = [{"t": t(0), "type": "index", "id": "VIX", "value": 16.0}]
    for second, spx in enumerate([6800.0, 6780.0, 6785.0, 6795.0]):
        lines.append({"t": t(second + 1), "type": "index", "id": "SPX", "value": spx})
    return write_session(lines, name=name)


def test_backtest_over_two_sessions_counts_per_rule(
    tmp_path: Path, write_session: WriteSession, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(ALWAYS)
    first, second = calm_and_dip(write_session, "a.jsonl"), calm_and_dip(write_session, "b.jsonl")
    code = main(
        [
            "backtest",
            str(first),
            str(second),
            "--portfolio",
            str(REPO / "tests" / "data" / "one-future.toml"),
            "--rules",
            str(rules),
            "--json",
        ]
    )
    assert code == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    # Each session fires at 6780 and resolves at 6795, from a fresh state.
    assert report["fired"] == {"SpxBelow6790": 2}
    assert report["resolved"] == {"SpxBelow6790": 2}
    first_fire = report["transitions"][0]
    assert first_fire["session"] == "a.jsonl"
    assert first_fire["state"] == "firing"
    assert first_fire["value"] == 6780.0
    assert first_fire["book"]["spx"] == 6780.0
    assert first_fire["book"]["vix"] == 16.0
    assert [e["session"] for e in report["transitions"]] == ["a.jsonl"] * 2 + ["b.jsonl"] * 2


def test_backtest_text_timeline_on_the_bundled_day(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "backtest",
            str(bundled.SESSION),
            "--portfolio",
            str(bundled.PORTFOLIO),
            "--rules",
            str(REPO / "rules"),
        ]
    )
    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert "FIRING   ShortStrikeDeltaWarning [category=greeks leg=P6425 strategy=IC-APR17]" in out
    assert "$/1% SPX" in out
    assert "VixTermStructureInverted" in out
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if line.startswith(("ShortStrike", "BookVega", "VixTerm", "FeedStale"))
    }
    assert rows["ShortStrikeDeltaWarning"] == ["1", "0"]
    assert rows["BookVegaLoss"] == ["0", "0"]
    assert rows["FeedStale"] == ["0", "0"]  # the bundled day has no gap in its data


def test_rules_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(REPO / "rules")]) == EXIT_OK
    rules = load_rule_file(REPO / "rules" / "second-engine.yaml")
    assert f"OK — {len(rules)} rules" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(ALWAYS.replace("spx < 6790", "spx <"))
    assert main(["rules", "check", str(bad)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "bad.yaml:5: rule 'SpxBelow6790': field expr: syntax error" in err


def test_rules_explain_shows_variables_units_and_last_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "rules",
            "explain",
            "VixTermStructureInverted",
            "--rules",
            str(REPO / "rules"),
            "--session",
            str(bundled.SESSION),
            "--portfolio",
            str(bundled.PORTFOLIO),
        ]
    )
    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert "expr   term.vx1 > term.vx2" in out
    assert "term.vx1                             number  VIX points" in out
    assert "values at 2026-03-03T16:15:00-05:00" in out
    assert "[(book)] expr is True; alert firing" in out  # VX1 25.15 above VX2 23.60 at close
    assert "term.vx1_minus_vx2                 = 1.55" in out


def test_rules_explain_unknown_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "explain", "Nope", "--rules", str(REPO / "rules")]) == EXIT_BAD_INPUT
    assert "no rule named 'Nope'" in capsys.readouterr().err


TUNED = """
instance = "tuned"
portfolio = "{portfolio}"
rules = ["{rules}"]
alerts_out = "{alerts}"
[feed]
session = "{session}"
[journal]
path = "{journal}"
[metrics]
enabled = false
[console]
enabled = false
[hedge]
band_low_pct = 30.0
band_high_pct = 45.0
[signals]
bar_minutes = 1
[scenarios]
spx_moves_pct = [-6.0, -3.0, 0.0, 3.0]
vol_shocks_points = [0.0, 10.0, 40.0]
vx_response_half_life_days = 30.0
"""


def test_a_backtest_gives_the_alerts_of_a_run_of_the_same_config(tmp_path: Path) -> None:
    """Non-default [hedge], [signals] and [scenarios]: `run --config` (the replay feed) and
    `backtest --config` over the same session write the same alerts file, byte for byte;
    and those sections change the alerts, so the comparison means something."""

    def config(name: str) -> Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(
            TUNED.format(
                portfolio=bundled.PORTFOLIO,
                rules=REPO / "rules",
                alerts=tmp_path / f"{name}-run.jsonl",
                session=bundled.SESSION,
                journal=tmp_path / f"{name}.sqlite",
            )
        )
        return path

    tuned = config("tuned")
    assert main(["run", "--config", str(tuned)]) == EXIT_OK
    backtested = tmp_path / "tuned-backtest.jsonl"
    code = main(
        ["backtest", str(bundled.SESSION), "--config", str(tuned), "--alerts-out", str(backtested)]
    )
    assert code == EXIT_OK
    run_bytes = (tmp_path / "tuned-run.jsonl").read_bytes()
    assert run_bytes
    assert backtested.read_bytes() == run_bytes
    # The default sections give other alerts on the same day.
    default = tmp_path / "default-backtest.jsonl"
    args = ["--portfolio", str(bundled.PORTFOLIO), "--rules", str(REPO / "rules")]
    assert main(["backtest", str(bundled.SESSION), *args, "--alerts-out", str(default)]) == 0
    assert default.read_bytes() != run_bytes
    rules_of = {json.loads(line)["rule"] for line in run_bytes.decode().splitlines()}
    assert "HedgeRatioOutOfBand" in rules_of  # the layer sits below a 30-45 % band


def test_a_backtest_refuses_a_session_a_run_refuses(
    write_session: WriteSession, capsys: pytest.CaptureFixture[str]
) -> None:
    """No SPX index declared by the session: a run refuses it, and so does the backtest,
    naming the file."""
    head = header(["VIX", "VX 20260318"])
    session = write_session([{"t": t(0), "type": "index", "id": "VIX", "value": 16.0}], head)
    args = ["--portfolio", str(REPO / "tests" / "data" / "one-future.toml")]
    args += ["--rules", str(REPO / "rules")]
    assert main(["backtest", str(session), *args]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "the session declares no SPX index, which pricing needs" in err
    assert session.name in err


def test_a_backtest_refuses_a_missing_warm_up_file_as_a_run_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "warm.toml"
    config.write_text(
        TUNED.format(
            portfolio=bundled.PORTFOLIO,
            rules=REPO / "rules",
            alerts=tmp_path / "a.jsonl",
            session=bundled.SESSION,
            journal=tmp_path / "j.sqlite",
        ).replace("[signals]\n", '[signals]\nwarm_up = ["missing.jsonl"]\n')
    )
    assert main(["backtest", str(bundled.SESSION), "--config", str(config)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "missing.jsonl" in err
    assert main(["run", "--config", str(config)]) == EXIT_BAD_INPUT
    assert "missing.jsonl" in capsys.readouterr().err


def test_failing_batches_are_reported_and_timed_forward(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The valuation fails for the first five minutes of the bundled day, and again from
    10:00 to 10:10: BatchesFailing fires before any good snapshot and the report shows it
    (with a book that knows nothing), and the evaluations in the gaps of the second stretch
    move forward in time instead of starting again from the last good snapshot after every
    failed batch."""
    import monitor.pipeline as pipeline_module
    from monitor.pipeline import Pipeline

    real = pipeline_module.aggregate
    day = "2026-03-03T{}:00-05:00".format
    windows = [
        (datetime.fromisoformat(day("09:30")), datetime.fromisoformat(day("09:35"))),
        (datetime.fromisoformat(day("10:00")), datetime.fromisoformat(day("10:10"))),
    ]
    evaluated: list[datetime] = []
    real_evaluate = Pipeline._evaluate

    def failing(*args: object, **kwargs: object) -> object:
        raise RuntimeError("aggregation fault injected by the test")

    def evaluate(self: Pipeline, snapshot: object) -> object:
        evaluated.append(snapshot.time)  # type: ignore[attr-defined]
        return real_evaluate(self, snapshot)  # type: ignore[arg-type]

    class Switch:
        def __call__(self, *args: object, **kwargs: object) -> object:
            last = evaluated[-1] if evaluated else windows[0][0]
            if any(start <= last < end for start, end in windows):
                return failing(*args, **kwargs)
            return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline_module, "aggregate", Switch())
    monkeypatch.setattr(Pipeline, "_evaluate", evaluate)
    args = ["--portfolio", str(bundled.PORTFOLIO), "--rules", str(REPO / "rules"), "--json"]
    assert main(["backtest", str(bundled.SESSION), *args]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["fired"]["BatchesFailing"] == 2
    assert report["resolved"]["BatchesFailing"] == 2  # each stretch ends
    fired = [
        e for e in report["transitions"] if e["rule"] == "BatchesFailing" and e["state"] == "firing"
    ]
    assert fired[0]["book"]["delta_usd_per_pct"] is None  # the book knew nothing yet
    assert fired[1]["book"]["delta_usd_per_pct"] is not None  # the last good book
    assert evaluated == sorted(evaluated)  # never back in time
    assert len(evaluated) == len(set(evaluated))


def test_two_sessions_of_the_same_name_are_told_apart(
    tmp_path: Path, write_session: WriteSession, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    good = calm_and_dip(write_session, "a/day.jsonl")
    bad = calm_and_dip(write_session, "b/day.jsonl")
    bad.write_text(bad.read_text() + "{not json\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(ALWAYS)
    args = ["--portfolio", str(REPO / "tests" / "data" / "one-future.toml"), "--rules", str(rules)]
    assert main(["backtest", str(bad), str(good), *args, "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["bad_lines"] == {str(bad): 1, str(good): 0}
    assert {e["session"] for e in report["transitions"]} == {str(bad), str(good)}
