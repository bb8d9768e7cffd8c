"""The Prometheus deployment files pass promtool, and the harness's real Prometheus scrapes."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import harness.prometheus as prometheus_module
import pytest
from conftest import REPO
from harness.ports import LOOPBACK, accepts_connections, free_port
from harness.prometheus import Prometheus, QueryError, find_prometheus, find_promtool

DEPLOY = REPO / "deploy" / "prometheus"
CONFIG = DEPLOY / "prometheus.yml"
RULES = sorted((DEPLOY / "rules").glob("*.yml"))
RULE_TESTS = DEPLOY / "tests" / "condor-platform.test.yml"
# What promtool prints when all is well; anything else on stderr is a warning or an error.
PROMTOOL_SUCCESS_LINE = re.compile(r"^\s*(|Checking \S.*|SUCCESS\b.*|Unit Testing: .*)$")

EXPOSITION = (
    b"# HELP harness_fixed_gauge A gauge with a fixed value, for the harness test.\n"
    b"# TYPE harness_fixed_gauge gauge\n"
    b'harness_fixed_gauge{colour="blue"} 42.5\n'
)


@pytest.fixture(name="promtool")
def promtool_fixture() -> Path:
    try:
        return find_promtool()
    except RuntimeError as exc:
        pytest.fail(f"{exc} (make test runs it before pytest)")


@pytest.fixture(name="prometheus_binary")
def prometheus_binary_fixture() -> Path:
    try:
        return find_prometheus()
    except RuntimeError as exc:
        pytest.fail(f"{exc} (make test runs it before pytest)")


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["check", "config", _relative(CONFIG)], "valid prometheus config", id="config"
        ),
        pytest.param(["check", "rules", *(_relative(p) for p in RULES)], "rules found", id="rules"),
        pytest.param(["test", "rules", _relative(RULE_TESTS)], "SUCCESS", id="rule-tests"),
    ],
)
def test_promtool_accepts_deploy_files(promtool: Path, args: list[str], expected: str) -> None:
    assert RULES, f"no rule files under {DEPLOY / 'rules'}"
    result = subprocess.run(
        [str(promtool), *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    report = f"promtool {' '.join(args)}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    unexpected = [
        line for line in result.stderr.splitlines() if not PROMTOOL_SUCCESS_LINE.match(line)
    ]
    assert unexpected == [], report
    assert expected in result.stdout + result.stderr, report


class _FixedExposition(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(EXPOSITION)))
        self.end_headers()
        self.wfile.write(EXPOSITION)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(name="exporter")
def exporter_fixture() -> Iterator[str]:
    """A stdlib HTTP server in a thread serving EXPOSITION at /metrics; its ``host:port``."""
    server = ThreadingHTTPServer((LOOPBACK, 0), _FixedExposition)
    thread = threading.Thread(target=server.serve_forever, name="fixed-exposition", daemon=True)
    thread.start()
    try:
        yield f"{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_harness_prometheus_scrapes_a_gauge(prometheus_binary: Path, exporter: str) -> None:
    with Prometheus([exporter], job="fixed") as prometheus:
        result = prometheus.wait_for("harness_fixed_gauge", timeout=20)
        assert len(result) == 1
        assert result[0]["metric"] == {
            "__name__": "harness_fixed_gauge",
            "colour": "blue",
            "instance": exporter,
            "job": "fixed",
        }
        assert float(result[0]["value"][1]) == 42.5
        assert prometheus.target_health() == [
            {"scrape_url": f"http://{exporter}/metrics", "health": "up", "last_error": ""}
        ]
        workdir, port, pid = prometheus.workdir, prometheus.port, prometheus.pid
        assert pid is not None
    assert not prometheus.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not workdir.exists()
    assert not accepts_connections(LOOPBACK, port)


def test_harness_prometheus_reports_query_errors(prometheus_binary: Path, exporter: str) -> None:
    with Prometheus([exporter]) as prometheus:
        with pytest.raises(QueryError, match=r"HTTP 400: bad_data: .*parse error"):
            prometheus.query("sum(")
        assert prometheus.query("1 + 1")[0]["value"][1] == "2"
        with pytest.raises(TimeoutError, match="harness_missing_metric"):
            prometheus.wait_for("harness_missing_metric", timeout=1)


def test_harness_prometheus_evaluates_the_deploy_rules(
    prometheus_binary: Path, exporter: str
) -> None:
    with Prometheus([exporter], job="condor-monitor", rule_files=RULES) as prometheus:
        prometheus.wait_for('ALERTS{alertname="Watchdog", alertstate="firing"}', timeout=20)
        assert prometheus.wait_for('up{job="condor-monitor"} == 1', timeout=20)
        firing = {
            a["labels"]["alertname"]: a["labels"]
            for a in prometheus.alerts()
            if a["state"] == "firing"
        }
        # The daemon's scrapes succeed, so it is not reported down.
        assert firing == {"Watchdog": {"alertname": "Watchdog", "severity": "none"}}


def test_harness_prometheus_retries_a_taken_port(
    prometheus_binary: Path, exporter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind((LOOPBACK, 0))
        blocker.listen()
        taken: int = blocker.getsockname()[1]
        offered = [taken]
        monkeypatch.setattr(
            prometheus_module,
            "free_port",
            lambda host=LOOPBACK: offered.pop() if offered else free_port(host),
        )
        with Prometheus([exporter]) as prometheus:
            assert prometheus.port != taken
            assert "address already in use" in prometheus.log_text()
            assert prometheus.query("vector(3)")[0]["value"][1] == "3"
