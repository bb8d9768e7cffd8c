"""Rule expressions and rule files: compiled, or refused with ExpressionError (its column) or a
ConfigError naming the file, the rule and the field; a compiled expression never raises."""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.conftest import FUZZ
from fuzz.strategies import JSON_VALUES, mutated_lines, mutated_tree
from monitor.errors import ConfigError
from monitor.rules.expressions import ExpressionError, VarType, compile_expression
from monitor.rules.loader import load_rule_set
from monitor.rules.variables import Scope, catalogue

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = catalogue(Scope.SHORT_LEG)
NAMES = sorted(CATALOGUE)
BOOK_NAMES = sorted(catalogue(Scope.BOOK))
NUMBER_NAMES = [n for n in BOOK_NAMES if CATALOGUE[n] is VarType.NUMBER]

ATOMS = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(lambda n: n + "x"),  # a typo
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(
        [
            "true",
            "false",
            '"put"',
            "'iron_condor'",
            "1" * 400,  # past the float range
            "0x" + "f" * 300,
            "1e400",
            "1j",
            "None",
            "...",
            "b'x'",
            "spx.__class__",
            "[1]",
            "lambda: 1",
            "x[0]",
            "f'{spx}'",
        ]
    ),
)
UNARY = ["not ", "-", "+", "~"]
BINARY = [" + ", " - ", " * ", " / ", " % ", " ** ", " // ", " & ", " << "]
COMPARE = [" < ", " <= ", " > ", " >= ", " == ", " != ", " in ", " is "]
BOOL = [" and ", " or "]


def _compose(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(st.sampled_from(UNARY), inner).map("".join),
        st.tuples(inner, st.sampled_from(BINARY + COMPARE + BOOL), inner).map("".join),
        inner.map(lambda e: f"({e})"),
        st.tuples(
            st.sampled_from(["abs", "min", "max", "len", "spx"]),
            st.lists(inner, max_size=3),
            st.booleans(),
        ).map(lambda c: f"{c[0]}({', '.join(c[1])}{', key=1' if c[2] else ''})"),
    )


EXPRESSIONS = st.recursive(ATOMS, _compose, max_leaves=10)
# Chains that parse flat but nest as deep trees, and runs long enough to exhaust the parser's
# memory (100,000 signs): the compiler must refuse them with a column, never crash.
DEEP = st.one_of(
    st.integers(1, 3000).map(lambda n: " + ".join(["spx"] * n)),
    st.integers(1, 100_000).map(lambda n: "-" * n + "spx"),
    st.integers(1, 100_000).map(lambda n: "not " * n + "true"),
    st.integers(1, 100_000).map(lambda n: "(" * n + "spx" + ")" * n),
    st.integers(1, 100_000).map(lambda n: "(" * n),
    st.integers(1, 100_000).map(lambda n: " and ".join(["true"] * n)),
    st.integers(1, 1000).map(lambda n: "f'" + "{spx}" * n + "'"),
)


def values_for(expression_names: frozenset[str], number: float) -> dict[str, Any]:
    by_type: dict[VarType, Any] = {VarType.NUMBER: number, VarType.BOOL: True, VarType.STRING: ""}
    return {name: by_type[CATALOGUE[name]] for name in expression_names}


@given(
    source=EXPRESSIONS | DEEP | st.text(max_size=40),
    number=st.floats(allow_nan=True, allow_infinity=True),
)
@example(source="1" * 400 + " > spx", number=1.0)
@example(source="0x" + "f" * 300, number=1.0)
@example(source=" + ".join(["spx"] * 3000), number=1.0)
@example(source="-" * 3000 + "spx", number=1.0)
@example(source="not " * 50_000 + "x", number=1.0)
@example(source="-" * 100_000 + "1", number=1.0)
@example(source="(" * 100_000, number=1.0)
@example(source=" and ".join(["spx > 0"] * 100_000), number=1.0)
@FUZZ
def test_expression_compiles_and_evaluates_or_is_refused_with_column(
    source: str, number: float
) -> None:
    try:
        expr = compile_expression(source, CATALOGUE)
    except ExpressionError as exc:
        refused = exc
    else:
        assert expr.names <= set(CATALOGUE)
        result = expr.evaluate(values_for(expr.names, number))
        expected = {VarType.NUMBER: float, VarType.BOOL: bool, VarType.STRING: str}[expr.type]
        assert isinstance(result, expected)
        return
    assert refused.message
    assert 1 <= refused.column <= len(source) + 1
    assert str(refused).endswith(f"(at column {refused.column})")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1" * 400 + " > spx", "number is too large"),
        ("0x" + "f" * 300, "number is too large"),
        (
            " + ".join(["spx"] * 3000),
            "the expression is too long: 17,997 characters, at most 2,000",
        ),
        ("-" * 3000 + "spx", "the expression is too long: 3,003 characters, at most 2,000"),
        ("not " * 3000 + "true", "the expression is too long: 12,004 characters, at most 2,000"),
        ("not " * 50_000 + "x", "the expression is too long: 200,001 characters, at most 2,000"),
        ("-" * 100_000 + "1", "the expression is too long: 100,001 characters, at most 2,000"),
        ("(" * 100_000, "the expression is too long: 100,000 characters, at most 2,000"),
        (" + ".join(["spx"] * 40), "the expression is nested too deeply: more than 32 levels"),
        ("-" * 40 + "spx", "the expression is nested too deeply: more than 32 levels"),
        ("not " * 40 + "true", "the expression is nested too deeply: more than 32 levels"),
        ("(" * 40 + "spx" + ")" * 40, "the expression is nested too deeply: more than 32 levels"),
        ("-(" * 33 + "spx" + ")" * 33, "the expression is nested too deeply: more than 32 levels"),
        (" and ".join(["true"] * 201), "the expression has too many terms: more than 200"),
        ("f'" + "{spx}" * 150 + "'", "the expression has too many terms: more than 200"),
    ],
)
def test_regression_expressions(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source, CATALOGUE)
    assert caught.value.message == message


BASE_RULE: dict[str, Any] = {
    "alert": "ShortDelta",
    "for_each": "short_leg",
    "expr": "leg.abs_delta >= 0.25",
    "clear": "leg.abs_delta < 0.23",
    "for": "1m",
    "keep_firing_for": "2m",
    "repeat_interval": "4h",
    "severity": "warning",
    "labels": {"category": "greeks"},
    "value": "leg.abs_delta",
    "unit": "delta per contract",
    "summary": "{strategy.name} short {leg.right} {leg.strike:.0f}: delta {value:.3f}",
    "action": "Roll the tested side.",
}
BOOK_RULE: dict[str, Any] = {
    "alert": "VixHigh",
    "expr": "vix > 30",
    "severity": "critical",
    "value": "vix",
    "unit": "points",
    "summary": "VIX {vix:.2f}",
}
BASE_FILE: dict[str, Any] = {
    "groups": [{"name": "g", "rules": [BASE_RULE, BOOK_RULE]}],
    "inhibit_rules": [{"source": {"alertname": "VixHigh"}, "target": {"category": "greeks"}}],
}
RULE_FIELDS = {"expr", "clear", "value", "summary", "action"}

RULE_VALUES = st.one_of(
    JSON_VALUES,
    EXPRESSIONS,
    st.sampled_from(["0s", "90s", "1h30m", "99999999999999h", "5 m", "-1m", "1.5m"]),
    st.sampled_from(["book", "strategy", "short_leg", "info", "warning", "critical"]),
    st.sampled_from(
        ["{spx:.2f}", "{spx!r}", "{spx.real}", "{spx:{x}}", "{", "{spx:1000000000000}"]
    ),
    st.sampled_from(["ShortDelta", "VixHigh", "alertname", "9bad"]),
)


@st.composite
def mutated_rule_file(draw: st.DrawFn) -> Any:
    """BASE_FILE with one to three of its fields changed, dropped or added, at any depth."""
    data: Any = BASE_FILE
    for _ in range(draw(st.integers(1, 3))):
        data = draw(mutated_tree(data, RULE_VALUES))
    return data


# YAML that PyYAML's SafeLoader types but cannot build, and other YAML oddities.
ODD_YAML = [
    "alert: 2026-02-30",
    "alert: !!bool maybe",
    "alert: !!timestamp soon",
    "alert: !!int ''",
    "alert: !!binary '*'",
    "alert: !!python/object:os.system x",
    "x: &a [*a]",
    "? [a]\n: b",
    "<<: 1",
    "alert: " + "1" * 5000,
    "[" * 3000,
]


# Ten aliases of ten aliases, nine times over: 10**10 nodes once expanded, from 500 bytes.
ALIAS_BOMB = "groups: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"x{n + 1}: &a{n + 1} [{', '.join([f'*a{n}'] * 10)}]\n" for n in range(9)
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-rules-") as name:
        yield Path(name)


FILE_PROBLEMS = (
    "not valid YAML: ",
    "cannot read (",
    "inhibit_rules: source alertname ",
    "the rule file is too large: ",
    "the rule file holds ",
)
RULE_PROBLEM = re.compile(r"^rule '(?P<rule>[^']*)': field (?P<field>\w+): \S")
FIELD_PROBLEM = re.compile(r"^field (?P<field>.+?): \S")


def check_rule_file(path: Path, text: str) -> None:
    """Loads ``text`` as a rule file: rules, or a ConfigError naming the file and the field."""
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        rule_set = load_rule_set([path])
    except ConfigError as exc:
        refused = exc
    else:
        for rule in rule_set.rules:
            assert rule.condition.type is VarType.BOOL
            assert rule.value.type is VarType.NUMBER
            assert not math.isnan(rule.hold.total_seconds())
        return
    assert refused.path == str(path)
    assert str(refused).startswith(str(path))
    reason = refused.reason
    if match := RULE_PROBLEM.match(reason):
        assert match["field"] in RULE_FIELDS
        assert refused.line is not None
        assert match["rule"] in text
        return
    assert (
        reason.startswith(FILE_PROBLEMS)
        or FIELD_PROBLEM.match(reason)
        or re.match(r"^rule '[^']*' is already defined at ", reason)
    ), reason


@given(mutated_rule_file())
@example({"groups": [{"name": "g", "rules": [{**BOOK_RULE, "for": "99999999999999h"}]}]})
@example({"groups": [{"name": "g", "rules": [{**BOOK_RULE, "summary": "{vix:1000000000000}"}]}]})
@example({"groups": [{"name": "g", "rules": [{**BOOK_RULE, "value": "0x" + "f" * 300}]}]})
@example({"groups": [{"name": "g", "rules": [{**BOOK_RULE, "expr": "not " * 50_000 + "x"}]}]})
@example({"groups": [{"name": "g", "rules": [{**BOOK_RULE, "clear": "-" * 100_000 + "1"}]}]})
@example({"groups": [{"name": "g", "rules": [{**BOOK_RULE, "value": "(" * 100_000}]}]})
@example({"groups": [{"name": "g", "rules": [{**BOOK_RULE, "summary": "{vix}" * 60_000}]}]})
@FUZZ
def test_rule_file_from_fields(workdir: Path, data: Any) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    check_rule_file(workdir / "rules.yaml", text)


SHIPPED_RULES = sorted([*(REPO / "rules").glob("*.yaml")])


@given(
    text=st.sampled_from(SHIPPED_RULES).map(Path.read_text).flatmap(mutated_lines),
    odd=st.none() | st.sampled_from(ODD_YAML),
)
@FUZZ
def test_shipped_rule_pack_mutated(workdir: Path, text: str, odd: str | None) -> None:
    if odd is not None:
        text = odd + "\n" + text
    check_rule_file(workdir / "pack.yaml", text)


@given(st.binary(max_size=200) | st.sampled_from(ODD_YAML).map(str.encode))
@FUZZ
def test_random_bytes_rule_file(workdir: Path, data: bytes) -> None:
    path = workdir / "random.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        load_rule_set([path])
    assert caught.value.path == str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "groups:\n  - name: g\n    rules:\n      - alert: 2026-02-30\n",
            ":4: not valid YAML: day",
        ),
        ("groups: !!bool maybe\n", ":1: not valid YAML: the value does not fit its tag"),
        ("groups: !!timestamp soon\n", ":1: not valid YAML: the value does not fit its tag"),
        ("groups: !!int ''\n", ":1: not valid YAML: the value does not fit its tag"),
        ("groups: " + "1" * 5000 + "\n", ":1: not valid YAML: Exceeds the limit"),
        ("[" * 5000, ": not valid YAML: nested too deeply"),
        (
            yaml.safe_dump(
                {"groups": [{"name": "g", "rules": [{**BOOK_RULE, "for": "9" * 15 + "h"}]}]}
            ),
            ": field groups[0].rules[0].for: duration '999999999999999h' is too long",
        ),
        (
            yaml.safe_dump(
                {"groups": [{"name": "g", "rules": [{**BOOK_RULE, "summary": "{vix:9999999999}"}]}]}
            ),
            ":4: rule 'VixHigh': field summary: field {vix}: width and precision are at most 100",
        ),
        (
            yaml.safe_dump(
                {"groups": [{"name": "g", "rules": [{**BOOK_RULE, "expr": "1" * 400}]}]}
            ),
            ":4: rule 'VixHigh': field expr: number is too large (at column 1)",
        ),
        (
            yaml.safe_dump(
                {"groups": [{"name": "g", "rules": [{**BOOK_RULE, "expr": "not " * 50_000}]}]},
                width=10**6,
            ),
            ":4: rule 'VixHigh': field expr: the expression is too long: 199,999 characters",
        ),
        ("groups: &a [*a]\n", ":1: not valid YAML: an alias refers to a node that holds it"),
        (ALIAS_BOMB, ":5: not valid YAML: more than 50,000 nodes once its aliases are expanded"),
        ("#" * 300_000, ": the rule file is too large: more than 262,144 bytes"),
    ],
)
def test_regression_rule_files(workdir: Path, text: str, message: str) -> None:
    path = workdir / "regression.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rule_set([path])
    assert str(caught.value).startswith(f"{path}{message}")
