"""Loading TOML files into pydantic models, with errors that name the file and the field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from monitor.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


# Tags of discriminated unions that pydantic puts in an error's location: ('feed', 'ib',
# 'port') names the field feed.port.
UNION_TAGS = {"replay", "ib"}


def field_path(loc: tuple[int | str, ...]) -> str:
    """('strategies', 0, 'legs', 2, 'contract') -> 'strategies[0].legs[2].contract'."""
    out = ""
    for index, part in enumerate(loc):
        if index and loc[index - 1] == "feed" and part in UNION_TAGS:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        message = err["msg"].removeprefix("Value error, ")
        loc = err["loc"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling)"
        elif err["type"] == "union_tag_invalid":  # the kind of a tagged section
            ctx = err.get("ctx", {})
            loc = (*loc, "kind")
            message = f"must be one of {ctx.get('expected_tags')}, not {ctx.get('tag')!r}"
        problems.append(f"field {field_path(loc)}: {message}")
    return "; ".join(problems)


def load_toml(path: Path, model: type[M], *, context: dict[str, object]) -> M:
    """Reads and validates ``path``; raises ConfigError naming the file, line or field."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "no such file") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(path, "not valid TOML: arrays or tables nested too deeply") from None
    except ValueError as exc:  # TOMLDecodeError, or an integer past Python's digit limit
        raise ConfigError(path, f"not valid TOML: {exc}") from None
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(path, describe_validation_error(exc)) from None
