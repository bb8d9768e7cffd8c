"""The systemd unit passes `systemd-analyze verify`, rates at most 2.0 in its offline security
review, and declares the notify, watchdog, credential and state settings the daemon relies on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

UNIT = REPO / "systemd" / "condor-monitor.service"
ENV_EXAMPLE = REPO / "systemd" / "condor-monitor.env.example"
ENTRY_POINT = REPO / ".venv" / "bin" / "condor-monitor"
INSTALLED_EXEC_START = (
    "/opt/condor-monitor/.venv/bin/condor-monitor --log-stream stdout run --config "
    "/etc/condor-monitor/condor-monitor.toml"
)
MAX_EXPOSURE = 2.0
# `--threshold` takes the exposure times ten: above 2.0 the command fails as well.
THRESHOLD = "--threshold=20"
EXPOSURE_LINE = re.compile(
    r"^\W*Overall exposure level for condor-monitor\.service: (\d+(?:\.\d+)?)\b", re.MULTILINE
)
# Both run without a service manager: `verify` loads the unit into a private, test-mode
# manager (nothing is started and PID 1 is never contacted) and `security --offline=true`
# reads the file instead of asking PID 1 over D-Bus. For `verify`:
#  --man=no          a `man:` Documentation= link would otherwise be looked up with man(1),
#                    which minimal images lack;
#  --generators=no   the generators in /lib/systemd/system-generators are not run (they
#                    inspect fstab, the kernel command line and the like, which in a container
#                    can print errors that are not about this unit);
#  no --root         the unit's implicit dependencies (sysinit.target, basic.target, ...)
#                    are found in the host's /lib/systemd/system, and ExecStart= must name a
#                    binary that exists on the host (this checkout's entry point).
VERIFY_FLAGS = ("--man=no", "--generators=no")

Sections = dict[str, dict[str, list[str]]]


@pytest.fixture(name="systemd_analyze")
def systemd_analyze_fixture() -> Path:
    found = shutil.which("systemd-analyze") or next(
        (p for p in ("/usr/bin/systemd-analyze", "/bin/systemd-analyze") if Path(p).is_file()),
        None,
    )
    if found is None:
        pytest.fail(
            "systemd-analyze not found: install the `systemd` Debian package "
            "(apt-get install systemd); it is needed to check systemd/condor-monitor.service"
        )
    return Path(found)


def analyze_env() -> dict[str, str]:
    """The environment minus SYSTEMD_* variables (a unit path, a log level) that would change
    what systemd-analyze loads or prints."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SYSTEMD_")}


def parse_unit(text: str) -> Sections:
    """Sections, keys and every value of a key, in order (systemd keys may repeat)."""
    sections: Sections = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert equals, f"line {number} is neither a section, a comment nor a setting: {raw!r}"
        assert not raw.endswith("\\"), f"line {number}: continuation lines are not expected"
        assert current is not None, f"line {number}: setting outside a section"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(name="service", scope="module")
def service_fixture() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))["Service"]


def local_copy(directory: Path, text: str) -> Path:
    """The unit with ExecStart= pointing at this checkout's entry point and an existing config."""
    if not ENTRY_POINT.is_file():
        pytest.fail(f"{ENTRY_POINT} is missing: create the virtualenv first (make test)")
    config = directory / "condor-monitor.toml"
    config.write_text("# stand-in for /etc/condor-monitor/condor-monitor.toml\n", encoding="utf-8")
    old = f"ExecStart={INSTALLED_EXEC_START}\n"
    assert text.count(old) == 1, "the unit should have one ExecStart= for the installed path"
    unit = directory / UNIT.name
    unit.write_text(
        text.replace(old, f"ExecStart={ENTRY_POINT} run --config {config}\n"), encoding="utf-8"
    )
    return unit


def verify(systemd_analyze: Path, unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(systemd_analyze), "verify", *VERIFY_FLAGS, str(unit)],
        capture_output=True,
        text=True,
        check=False,
        cwd=unit.parent,
        env=analyze_env(),
        timeout=120,
    )


def test_verify_is_clean(systemd_analyze: Path, tmp_path: Path) -> None:
    unit = local_copy(tmp_path, UNIT.read_text(encoding="utf-8"))
    result = verify(systemd_analyze, unit)
    assert result.returncode == 0, f"verify exited {result.returncode}:\n{result.stderr}"
    assert result.stderr == "", f"verify printed warnings:\n{result.stderr}"
    assert result.stdout == "", f"verify printed:\n{result.stdout}"


def test_verify_reports_a_misspelt_setting(systemd_analyze: Path, tmp_path: Path) -> None:
    """The check above can fail: a typo in a setting is reported on stderr."""
    text = UNIT.read_text(encoding="utf-8").replace("\nWatchdogSec=", "\nWatchdogSecs=", 1)
    result = verify(systemd_analyze, local_copy(tmp_path, text))
    assert "Unknown key 'WatchdogSecs'" in result.stderr, result.stderr


def test_offline_security_exposure_is_at_most_two(systemd_analyze: Path) -> None:
    result = subprocess.run(
        [str(systemd_analyze), "security", "--offline=true", THRESHOLD, str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        cwd=UNIT.parent,
        env=analyze_env() | {"SYSTEMD_COLORS": "0"},
        timeout=120,
    )
    match = EXPOSURE_LINE.search(result.stdout)
    assert match is not None, f"no exposure line in:\n{result.stdout}\n{result.stderr}"
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{result.stdout}"
    assert result.returncode == 0, f"exited {result.returncode}:\n{result.stderr}"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("Restart", "on-failure"),
        ("StateDirectory", "condor-monitor"),
        ("CacheDirectory", "condor-monitor"),
        ("WorkingDirectory", "%S/condor-monitor"),
        ("DynamicUser", "yes"),
        ("ExecStart", INSTALLED_EXEC_START),
    ],
)
def test_service_setting(service: dict[str, list[str]], key: str, value: str) -> None:
    assert service.get(key) == [value]


def test_watchdog_and_timeouts(service: dict[str, list[str]]) -> None:
    assert service["WatchdogSec"] == ["60"]
    assert service["TimeoutStartSec"] == ["300"]
    assert service["TimeoutStopSec"] == ["30"]


def test_mqtt_password_is_a_credential(service: dict[str, list[str]]) -> None:
    # The config names it: [mqtt] password_credential = "mqtt-password".
    assert service["LoadCredential"] == ["mqtt-password:/etc/condor-monitor/mqtt-password"]


def test_numba_cache_is_in_the_cache_directory(service: dict[str, list[str]]) -> None:
    assert "NUMBA_CACHE_DIR=%C/condor-monitor" in service["Environment"]


def test_write_execute_memory_stays_allowed(service: dict[str, list[str]]) -> None:
    """numba's JIT writes machine code and then executes it."""
    assert "MemoryDenyWriteExecute" not in service


def test_env_example_sets_only_comments() -> None:
    """The example changes nothing until an operator uncomments a line."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    assert all(not line.strip() or line.startswith("#") for line in lines)
