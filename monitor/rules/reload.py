"""Hot reload of rule packs: on SIGHUP and when a rule file changes.

A valid new rule set replaces the old one in a single assignment between two snapshots; an
invalid one is rejected with the error logged, and the old set stays in force. Nothing a
rule file holds can end the daemon here: a load that fails in any other way than a
ConfigError is logged and refused the same way.
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from monitor.errors import ConfigError
from monitor.rules.engine import RuleEngine
from monitor.rules.loader import RuleSet, load_rule_set

log = structlog.get_logger(__name__)
CHECK_EVERY_SECONDS = 1.0  # wall-clock time between looks at the files' modification times


def _signature(paths: list[Path]) -> tuple[tuple[str, float, int], ...]:
    """Names, modification times and sizes of every rule file under ``paths``."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        elif path.exists():
            files.append(path)
    out = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        out.append((str(file), stat.st_mtime, stat.st_size))
    return tuple(out)


class RuleReloader:
    def __init__(self, paths: list[Path], engine: RuleEngine) -> None:
        self.paths = paths
        self.engine = engine
        self._signature = _signature(paths)
        self._requested = False
        self._next_check = time.monotonic() + CHECK_EVERY_SECONDS
        self.reloads = 0
        self.failures = 0
        self.last_error: str | None = None

    def request(self) -> None:
        """Called from the SIGHUP handler: reload before the next snapshot."""
        self._requested = True

    def maybe_reload(self) -> bool | None:
        """Reloads if asked or if a file changed; True/False for success, None if nothing."""
        now = time.monotonic()
        if not self._requested and now < self._next_check:
            return None
        self._next_check = now + CHECK_EVERY_SECONDS
        signature = _signature(self.paths)
        if not self._requested and signature == self._signature:
            return None
        self._requested = False
        self._signature = signature
        return self.reload()

    def reload(self) -> bool:
        kept = len(self.engine.rules)
        try:
            rule_set = load_rule_set(self.paths)
        except ConfigError as exc:
            error = str(exc)
            log.error(  # noqa: TRY400 - the message names file and rule; no traceback needed
                "rules_reload_rejected", error=error, kept=kept
            )
        except Exception as exc:
            # The loop edge: the loader makes every problem of a file a ConfigError, so this is
            # a MemoryError, a RecursionError or a bug. Logged with its traceback and refused
            # like a bad file: the old rules keep watching the book.
            error = f"{type(exc).__name__}: {exc}"
            log.exception("rules_reload_rejected", error=error, kept=kept)
        else:
            self.engine.replace(rule_set)
            self.reloads += 1
            self.last_error = None
            log.info("rules_reloaded", rules=len(rule_set.rules))
            return True
        self.failures += 1
        self.last_error = error
        return False


__all__ = ["RuleReloader", "RuleSet"]
