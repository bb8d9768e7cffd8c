"""Portfolio and daemon config files: valid, or a ConfigError naming the file and the field."""

from __future__ import annotations

import json
import math
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel

from fuzz.conftest import FUZZ
from fuzz.strategies import JSON_VALUES, NUMBERS, mutated_lines, mutated_tree
from monitor import bundled
from monitor.config import DaemonConfig, load_config
from monitor.errors import ConfigError
from monitor.portfolio.model import PortfolioSpec, load_portfolio

REPO = Path(__file__).resolve().parents[2]
PORTFOLIO_TEXT = bundled.PORTFOLIO.read_text(encoding="utf-8")
CONFIG_TEXT = (REPO / "deploy" / "examples" / "condor-monitor.toml").read_text(encoding="utf-8")
PORTFOLIO_TREE = tomllib.loads(PORTFOLIO_TEXT)
CONFIG_TREE = tomllib.loads(CONFIG_TEXT)

# A problem found by validation reads "field <dotted.path>: <message>".
FIELD_PROBLEM = re.compile(r"^field (?P<field>.+?): \S")
SYNTAX_PROBLEMS = ("not valid TOML: ", "not UTF-8 text")


def toml_value(value: Any) -> str:
    """A TOML inline value; JSON string escapes are TOML's basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # past Python's digit limit: only the length matters here
            return "9" * 5000
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(items) + "}"
    raise TypeError(value)  # pragma: no cover - the strategies build only the types above


def toml_document(tree: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in tree.items() if v is not None)


CONTRACT_IDS = st.from_regex(
    r"\A(SPX|SPXW|VIX|VX|AD-NYSE|ABC)( (0001|2026|2027|9999)[01][0-9][0-3][0-9])?"
    r"( [CP][0-9.]{1,6})?\Z"
) | st.sampled_from(
    ["SPX 20260417 P6425", "VX 20260415", "SPX 20260403 P6400", "SPX 20260417 P0", ""]
)
PORTFOLIO_VALUES = st.one_of(
    JSON_VALUES,
    CONTRACT_IDS,
    st.integers(-3, 3),
    st.sampled_from(["iron_condor", "second_engine", "other"]),
    st.lists(st.fixed_dictionaries({"contract": CONTRACT_IDS, "quantity": st.integers(-3, 3)})),
)
CONFIG_VALUES = st.one_of(
    JSON_VALUES,
    NUMBERS,
    st.sampled_from(["replay", "ib", "~", "~nosuchuser/x", "/abs/path", "", "127.0.0.1", "::1"]),
    st.sampled_from([{"kind": "ib"}, {"kind": "ib", "port": 0}, {"kind": "other"}, []]),
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-toml-") as name:
        yield Path(name)


def check_loads(
    loader: Callable[[Path], object], model: type[BaseModel], path: Path, text: str
) -> None:
    """Loads ``text`` from ``path``: it loads, or the ConfigError names the file and field."""
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        loader(path)
    except ConfigError as exc:
        refused = exc
    else:
        return
    assert refused.path == str(path)
    assert str(refused).startswith(f"{path}: ")
    if refused.reason.startswith(SYNTAX_PROBLEMS):
        return
    assert FIELD_PROBLEM.match(refused.reason), refused.reason
    # The field path starts at a field of the model, or at a key the file wrote.
    known = {*model.model_fields, *tomllib.loads(text), "(top level)"}
    assert any(refused.reason.startswith(f"field {key}") for key in known), refused.reason


@given(mutated_tree(PORTFOLIO_TREE, PORTFOLIO_VALUES))
@example({**PORTFOLIO_TREE, "account_size_usd": 10**5000})
@example({"strategies": [{"name": "x", "kind": "other", "legs": [{"contract": "VX 99991231"}]}]})
@FUZZ
def test_portfolio_tree(workdir: Path, tree: Any) -> None:
    text = toml_document(tree if isinstance(tree, dict) else {"strategies": tree})
    check_loads(load_portfolio, PortfolioSpec, workdir / "portfolio.toml", text)


@given(st.just(PORTFOLIO_TEXT).flatmap(mutated_lines))
@FUZZ
def test_portfolio_text(workdir: Path, text: str) -> None:
    check_loads(load_portfolio, PortfolioSpec, workdir / "portfolio.toml", text)


@given(mutated_tree(CONFIG_TREE, CONFIG_VALUES))
@example({**CONFIG_TREE, "portfolio": "~nosuchuser/portfolio.toml"})
@example({**CONFIG_TREE, "rules": ["~nosuchuser"]})
@FUZZ
def test_config_tree(workdir: Path, tree: Any) -> None:
    text = toml_document(tree if isinstance(tree, dict) else {"feed": tree})
    check_loads(load_config, DaemonConfig, workdir / "config.toml", text)


@given(st.just(CONFIG_TEXT).flatmap(mutated_lines))
@FUZZ
def test_config_text(workdir: Path, text: str) -> None:
    check_loads(load_config, DaemonConfig, workdir / "config.toml", text)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@FUZZ
def test_random_bytes(workdir: Path, data: bytes) -> None:
    for loader in (load_portfolio, load_config):
        path = workdir / "random.toml"
        path.write_bytes(data)
        with pytest.raises(ConfigError) as caught:
            loader(path)
        assert str(caught.value).startswith(f"{path}: ")
        reason = caught.value.reason
        assert reason.startswith(SYNTAX_PROBLEMS) or FIELD_PROBLEM.match(reason), reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a = " + "[" * 5000, "not valid TOML: arrays or tables nested too deeply"),
        ("a = " + "{b = " * 2000, "not valid TOML: arrays or tables nested too deeply"),
        ("account_size_usd = " + "1" * 5000, "not valid TOML: Exceeds the limit (4300 digits)"),
    ],
)
def test_regression_portfolio(workdir: Path, text: str, reason: str) -> None:
    path = workdir / "regression.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_portfolio(path)
    assert str(caught.value).startswith(f"{path}: {reason}")


@pytest.mark.parametrize("field", ["portfolio", "journal.path", "feed.session"])
def test_regression_config_unknown_home(workdir: Path, field: str) -> None:
    tree = json.loads(json.dumps(CONFIG_TREE))
    *sections, key = field.split(".")
    node = tree
    for section in sections:
        node = node[section]
    node[key] = "~nosuchuser/x"
    path = workdir / "regression.toml"
    path.write_text(toml_document(tree), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (f"{path}: field {field}: cannot expand '~' in '~nosuchuser/x'")
