"""A real Prometheus server on a loopback port, scraping given targets, queried over its HTTP API.

``Prometheus`` runs the system ``prometheus`` binary (Debian package ``prometheus``) with a
generated config in a temporary work directory: one scrape job over the given ``host:port``
targets every second (timeout below the interval), optional rule files evaluated at the same
interval, a TSDB in the work directory and a web listener on ``127.0.0.1:<free port>``. It is
ready once ``/-/ready`` answers 200. ``query()`` runs an instant query through
``/api/v1/query``; ``wait_for()`` repeats it until it returns something. On exit the process
gets SIGTERM, then SIGKILL, and the work directory is removed.

``find_promtool()`` locates ``promtool`` from the same package, for ``promtool check`` and
``promtool test rules``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from harness.ports import LOOPBACK, find_binary, free_port

INSTALL_HINT = "run scripts/ensure-system-packages.sh to install the prometheus package"
PROMETHEUS_FALLBACK = Path("/usr/bin/prometheus")
PROMTOOL_FALLBACK = Path("/usr/bin/promtool")
START_ATTEMPTS = 5
PORT_IN_USE = "address already in use"
POLL_INTERVAL = 0.05
HTTP_TIMEOUT = 5.0


def _find_binary(name: str, fallback: Path) -> Path:
    return find_binary(name, fallback, INSTALL_HINT)


def find_prometheus() -> Path:
    """The ``prometheus`` binary on PATH, else /usr/bin/prometheus; RuntimeError if absent."""
    return _find_binary("prometheus", PROMETHEUS_FALLBACK)


def find_promtool() -> Path:
    """The ``promtool`` binary on PATH, else /usr/bin/promtool; RuntimeError if absent."""
    return _find_binary("promtool", PROMTOOL_FALLBACK)


def _duration(seconds: float) -> str:
    """A Prometheus duration in whole milliseconds, e.g. ``1000ms``."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"a duration must be positive, got {seconds} s")
    return f"{millis}ms"


class PortInUseError(RuntimeError):
    """Prometheus exited at start-up because its web port was already bound."""


class QueryError(RuntimeError):
    """The Prometheus HTTP API refused a query or answered with an error."""


class Prometheus:
    """One Prometheus process on 127.0.0.1 scraping ``targets`` (``host:port`` strings).

    ``scrape_interval`` (seconds) is also the rule evaluation interval; the scrape timeout is
    80 % of it. ``rule_files`` are copied into the config as absolute paths. The work directory
    (config, TSDB, log) is temporary unless given, and removed by ``close()`` when temporary.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        job: str = "harness",
        scrape_interval: float = 1.0,
        rule_files: Sequence[Path] = (),
        workdir: Path | None = None,
    ) -> None:
        if isinstance(targets, str):
            raise TypeError("targets is a sequence of 'host:port' strings, not one string")
        self.targets = list(targets)
        self.job = job
        self.scrape_interval = scrape_interval
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self._owned_dir: Path | None = None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="prometheus-"))
            self._owned_dir = workdir
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "prometheus.yml"
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "prometheus.log"
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- addressing ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The web listener address, always the IPv4 loopback."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """The web listener port; RuntimeError before ``start()`` picked one."""
        if self._port is None:
            raise RuntimeError("Prometheus has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the base of the web UI and the HTTP API."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the Prometheus process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while it runs, else None."""
        return self._proc.pid if self.running and self._proc is not None else None

    # -- configuration ------------------------------------------------------------------------

    def config_text(self) -> str:
        """The prometheus.yml the next start writes (JSON, which is valid YAML)."""
        interval = _duration(self.scrape_interval)
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": _duration(self.scrape_interval * 0.8),
                "evaluation_interval": interval,
            },
            "scrape_configs": [
                {"job_name": self.job, "static_configs": [{"targets": self.targets}]},
            ],
        }
        if self.rule_files:
            config["rule_files"] = [str(p) for p in self.rule_files]
        return json.dumps(config, indent=2) + "\n"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Self:
        """Starts Prometheus on a free port and returns once ``/-/ready`` answers 200.

        The port can be taken by another process between picking and binding it; then a new
        one is picked and the start retried.
        """
        if self.running:
            raise RuntimeError(f"Prometheus already runs on port {self.port}")
        binary = find_prometheus()
        failure: PortInUseError | None = None
        for _ in range(START_ATTEMPTS):
            self._port = free_port(self.host)
            try:
                self._launch(binary, timeout)
            except PortInUseError as exc:
                failure = exc
                continue
            return self
        raise RuntimeError(f"Prometheus could not bind a port in {START_ATTEMPTS} attempts") from (
            failure
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; waits for the exit. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """Stops Prometheus and removes the work directory when the harness created it."""
        self.stop()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def __enter__(self) -> Self:
        if not self.running:
            try:
                self.start()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- HTTP API -----------------------------------------------------------------------------

    def api(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; QueryError with the API's error text."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as exc:
            # 400 (bad expression), 422 (cannot execute) and 503 answer a JSON error document.
            body = exc.read()
            raise QueryError(f"GET {url}: HTTP {exc.code}: {_error_text(body)}") from exc
        except urllib.error.URLError as exc:
            raise QueryError(f"GET {url}: {exc.reason}\n{self.log_tail()}") from exc
        document = json.loads(body)
        if document.get("status") != "success":
            raise QueryError(f"GET {url}: {_error_text(body)}")
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Evaluates ``expr`` now; the result as a list of ``{"metric": ..., "value": ...}``.

        ``value`` is ``[unix_time, "number as text"]``. A scalar or string result comes back as
        one element with empty ``metric``. QueryError with the API's message on failure.
        """
        data = self.api("query", {"query": expr})
        result_type, result = data["resultType"], data["result"]
        if result_type in {"vector", "matrix"}:
            return list(result)
        return [{"metric": {}, "value": result}]

    def wait_for(self, expr: str, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Repeats ``query(expr)`` until its result is not empty, and returns that result.

        TimeoutError after ``timeout`` seconds, with the targets' health and last scrape error.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if not self.running:
                raise RuntimeError(f"Prometheus exited:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{expr!r} returned nothing within {timeout}s; targets: {self.target_health()}"
                )
            time.sleep(POLL_INTERVAL * 4)

    def target_health(self) -> list[dict[str, str]]:
        """Each active target's scrape URL, health (up, down, unknown) and last error."""
        data = self.api("targets", {"state": "active"})
        return [
            {
                "scrape_url": t.get("scrapeUrl", ""),
                "health": t.get("health", ""),
                "last_error": t.get("lastError", ""),
            }
            for t in data.get("activeTargets", [])
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts of the loaded rules that are pending or firing now (``/api/v1/alerts``)."""
        data = self.api("alerts")
        return list(data["alerts"])

    # -- logs ---------------------------------------------------------------------------------

    def log_text(self) -> str:
        """The whole Prometheus log (its stderr), across starts."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- internals ----------------------------------------------------------------------------

    def _launch(self, binary: Path, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.data_dir}",
                    f"--web.listen-address={self.host}:{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.workdir,
            )
        try:
            self._await_ready(self._proc, timeout)
        except BaseException:
            self.stop()
            raise

    def _await_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        ready_url = f"{self.url}/-/ready"
        while True:
            status = proc.poll()
            if status is not None:
                log = self._log_since_start()
                if PORT_IN_USE in log:
                    raise PortInUseError(f"port {self.port} is taken:\n{log}")
                raise RuntimeError(
                    f"prometheus exited with status {status} at start-up:\n{self.log_tail()}"
                )
            if _answers_ok(ready_url):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Prometheus was not ready on port {self.port} within {timeout}s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL)

    def _log_since_start(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")


def _answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _error_text(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()
    if isinstance(document, dict) and "error" in document:
        return f"{document.get('errorType', 'error')}: {document['error']}"
    return body.decode(errors="replace").strip()
