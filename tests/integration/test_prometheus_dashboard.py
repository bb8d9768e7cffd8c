"""A real Prometheus scrapes the daemon during a replay: the scrape passes `promtool check
metrics`, and every PromQL expression of the Grafana dashboard returns data through the
Prometheus HTTP API.

The replay is the bundled day's 13:30-14:20, warmed up from its morning (so MACD, RSI and the
hedge statistics have values), with MQTT delivery to a harness broker (the delivery panels),
one malformed line (the bad-lines panel) and the feed's own model numbers on the short put
(the model-difference panel), as an IB recording carries them.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

from conftest import REPO
from dashboard import dashboard_expressions, render_expression
from harness.mosquitto import Mosquitto
from harness.prometheus import Prometheus, find_promtool

from monitor import bundled

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "condor-monitor.json"
SPLIT = datetime.fromisoformat("2026-03-03T13:30:00-05:00")
END = datetime.fromisoformat("2026-03-03T14:20:00-05:00")
SPEED = 60  # 50 session minutes in 50 s
SHORT_PUT = "SPX 20260417 P6425"


def split_day(tmp_path: Path) -> tuple[Path, Path]:
    with gzip.open(bundled.SESSION, "rt", encoding="utf-8") as lines:
        header = next(lines)
        morning, afternoon = [header], [header, "{this line is not JSON\n"]
        for line in lines:
            event = json.loads(line)
            stamp = datetime.fromisoformat(event["t"])
            if stamp < SPLIT:
                morning.append(line)
            elif stamp < END:
                if event["id"] == SHORT_PUT and "bid" in event:
                    event["model"] = {"iv": 0.235, "delta": -0.28, "underlying": 6650.0}
                afternoon.append(json.dumps(event) + "\n")
    paths = tmp_path / "2026-03-03-morning.jsonl", tmp_path / "afternoon.jsonl"
    for path, kept in zip(paths, (morning, afternoon), strict=True):
        path.write_text("".join(kept), encoding="utf-8")
    return paths


def test_every_dashboard_expression_returns_data_from_a_real_prometheus(tmp_path: Path) -> None:
    morning, afternoon = split_day(tmp_path)
    with Mosquitto(tmp_path / "broker") as broker:
        config = tmp_path / "run.toml"
        config.write_text(
            'instance = "dashboard"\n'
            f'portfolio = "{bundled.PORTFOLIO}"\nrules = ["{REPO / "rules"}"]\n'
            f'[feed]\nsession = "{afternoon}"\nspeed = {SPEED}\n'
            f'[signals]\nwarm_up = ["{morning}"]\n'
            '[journal]\npath = "journal.sqlite"\n[metrics]\nport = 0\n[console]\nenabled = false\n'
            f'[mqtt]\nenabled = true\nhost = "{broker.host}"\nport = {broker.port}\n'
        )
        command = ["run", "--config", str(config)]
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "--log-level", "info", *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        logged: list[str] = []
        reader = threading.Thread(target=lambda: logged.extend(daemon.stderr or []), daemon=True)
        reader.start()
        try:
            url = wait_for_url(logged, daemon)
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
                scrape = response.read()
            lint = subprocess.run(
                [str(find_promtool()), "check", "metrics"],
                input=scrape,
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert lint.returncode == 0, (lint.stdout + lint.stderr).decode()
            assert lint.stdout.strip() == b"", lint.stdout.decode()
            target = url.removeprefix("http://").removesuffix("/metrics")
            with Prometheus([target], job="condor-monitor", scrape_interval=1.0) as prometheus:
                prometheus.wait_for("condor_snapshots_total", timeout=30)
                prometheus.wait_for("count_over_time(condor_snapshots_total[30s]) >= 8", 30)
                empty = []
                expressions = dashboard_expressions(DASHBOARD)
                for title, expr in expressions:
                    query = render_expression(expr, instance_regex=".*", rate_interval="10s")
                    if not prometheus.query(query):
                        empty.append(f"{title}: {query}")
                assert daemon.poll() is None, "the replay ended before every query ran"
        finally:
            if daemon.poll() is None:
                daemon.terminate()
            code = daemon.wait(timeout=60)
            reader.join(timeout=5)
    assert len(expressions) > 60
    assert empty == []
    assert code == 0, "".join(logged[-20:])


def wait_for_url(logged: list[str], daemon: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and daemon.poll() is None:
        for line in logged[:]:
            if '"metrics_serving"' in line:
                return str(json.loads(line)["url"])
        time.sleep(0.05)
    raise AssertionError("the daemon never served metrics:\n" + "".join(logged[-20:]))
