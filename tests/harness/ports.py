"""Local TCP port helpers: pick a free port, probe one, wait for one to accept connections."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS reports free on ``host`` right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def accepts_connections(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when a TCP connection to ``host:port`` succeeds within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Blocks until ``host:port`` accepts TCP connections; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not accepts_connections(host, port):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} did not accept connections within {timeout}s")
        time.sleep(interval)


def find_binary(name: str, fallback: Path, install_hint: str) -> Path:
    """``name`` on PATH, else ``fallback`` if executable; RuntimeError with the hint if absent."""
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    if os.access(fallback, os.X_OK):
        return fallback
    raise RuntimeError(f"{name} was not found on PATH nor at {fallback}: {install_hint}")
