"""/healthz, /readyz and /state of a running daemon: /readyz turns unready when the feed goes
stale during market hours and ready again when data returns."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from conftest import REPO

from monitor import bundled

START = datetime.fromisoformat("2026-03-03T10:58:00-05:00")
HOLE_START = datetime.fromisoformat("2026-03-03T11:00:00-05:00")
HOLE_END = datetime.fromisoformat("2026-03-03T11:03:00-05:00")
END = datetime.fromisoformat("2026-03-03T11:05:00-05:00")
SPEED = 30  # session seconds per wall second: the 3-minute hole lasts 6 s


def slice_with_a_hole(path: Path) -> Path:
    with gzip.open(bundled.SESSION, "rt", encoding="utf-8") as lines:
        kept = [next(lines)]
        for line in lines:
            stamp = datetime.fromisoformat(json.loads(line)["t"])
            if START <= stamp < END and not HOLE_START <= stamp < HOLE_END:
                kept.append(line)
    path.write_text("".join(kept), encoding="utf-8")
    return path


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_readyz_follows_the_feed_and_state_carries_the_book(tmp_path: Path) -> None:
    session = slice_with_a_hole(tmp_path / "slice.jsonl")
    config = tmp_path / "run.toml"
    config.write_text(
        'instance = "endpoints"\n'
        f'portfolio = "{bundled.PORTFOLIO}"\nrules = ["{REPO / "rules"}"]\n'
        f'[feed]\nsession = "{session}"\nspeed = {SPEED}\n'
        '[journal]\npath = "journal.sqlite"\n'
        "[metrics]\nport = 0\nready_max_data_age_seconds = 60\n"
        "[console]\nenabled = false\n"
    )
    # systemd's notification socket, as systemd would give it (Type=notify, WatchdogSec=1).
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.2)
    messages: list[str] = []
    listening = threading.Event()
    listening.set()

    def listen() -> None:
        while listening.is_set():
            try:
                messages.append(notify.recv(4096).decode())
            except TimeoutError:
                continue

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "--log-level",
            "info",
            "run",
            "--config",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        lines.extend(process.stderr)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[tuple[int, tuple[str, ...]]] = []
    try:
        deadline = time.monotonic() + 60
        base = None
        while base is None and time.monotonic() < deadline:
            for line in lines[:]:
                if '"metrics_serving"' in line:
                    base = json.loads(line)["url"].removesuffix("/metrics")
            time.sleep(0.05)
        assert base is not None, "".join(lines[-20:])
        health_code, health = get(f"{base}/healthz")
        assert (health_code, health["status"]) == (200, "ok")
        missing_code, missing = get(f"{base}/nope")
        assert missing_code == 404
        assert "/readyz" in missing["error"]
        state_seen: dict[str, Any] | None = None
        while process.poll() is None and time.monotonic() < deadline:
            try:
                code, body = get(f"{base}/readyz")
            except (urllib.error.URLError, ConnectionError):
                break  # the replay ended and the server closed
            if not seen or seen[-1][0] != code:
                seen.append((code, tuple(body["reasons"])))
            if code == 200 and state_seen is None:
                state_code, state_seen = get(f"{base}/state")
                assert state_code == 200
            time.sleep(0.05)
    finally:
        try:
            process.wait(timeout=30)  # the replay ends by itself
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=30)
        reader.join(timeout=5)
        time.sleep(0.3)
        listening.clear()
        listener.join(timeout=5)
        notify.close()
    assert process.returncode == 0, "".join(lines[-20:])
    # READY once the first snapshot exists, watchdog pings while the pipeline moves (the
    # timer evaluations go on in the hole), STOPPING at the end.
    assert messages[0].startswith("READY=1\nSTATUS=watching 2 strategies"), messages[:3]
    assert messages.count("WATCHDOG=1") >= 5
    assert messages[-1].startswith("STOPPING=1")
    codes = [code for code, _ in seen]
    # Ready on the first snapshot, unready in the hole, ready again when data returns.
    first = codes.index(200)
    assert codes[first : first + 3] == [200, 503, 200], seen
    reasons = seen[first + 1][1]
    assert any("during market hours (limit 60 s)" in r for r in reasons), reasons
    assert state_seen is not None
    assert state_seen["instance"] == "endpoints"
    assert state_seen["book"]["vega_usd_per_vol_point"] < 0
    assert set(state_seen["strategies"]) == {"IC-APR17", "SECOND-ENGINE"}
    assert state_seen["ready"]["ready"] is True
    assert state_seen["ready"]["market_open"] is True
