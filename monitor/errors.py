"""Errors raised for bad input; each names the file, line or field it is about."""

from __future__ import annotations

from pathlib import Path


class MonitorError(Exception):
    """Base class of errors that end a command with a clear message and a non-zero exit."""


class InputError(MonitorError):
    """Bad input in a file: the message names the file and, where known, the line and field."""

    def __init__(self, path: Path | str, reason: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class ConfigError(InputError):
    """A daemon config, portfolio or rule file that cannot be used as written."""


class ReplayFormatError(InputError):
    """A replay file whose header is missing or wrong: nothing in it can be trusted."""
