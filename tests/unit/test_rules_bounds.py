"""Rule files past the loader's bounds are refused with a ConfigError naming the file, the line
and the rule, before their text reaches a parser; the shipped packs sit far inside the bounds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from conftest import REPO

from monitor.errors import ConfigError
from monitor.rules import expressions, loader, templates
from monitor.rules.expressions import ExpressionError, VarType, compile_expression
from monitor.rules.loader import load_rule_set
from monitor.rules.variables import Scope, catalogue

# The rule under test, Huge, starts on line 10.
PACK = """\
groups:
  - name: g
    rules:
      - alert: Calm
        expr: vix < 20
        severity: info
        value: vix
        unit: VIX points
        summary: "VIX {vix:.2f}"
      - alert: Huge
        expr: EXPR
        severity: info
        value: vix
        unit: VIX points
        summary: SUMMARY
"""
TOO_LONG = "the expression is too long: {:,} characters, at most 2,000 (at column 1)"
TOO_DEEP = "the expression is nested too deeply: more than 32 levels (at column {})"
TOO_MANY = "the expression has too many terms: more than 200 (at column {})"


def write_pack(directory: Path, expr: str = "vix > 30", summary: str = "VIX high") -> Path:
    path = directory / "pack.yaml"
    text = PACK.replace("EXPR", json.dumps(expr)).replace("SUMMARY", json.dumps(summary))
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_rule_set([path])
    assert caught.value.path == str(path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("not " * 50_000 + "x", TOO_LONG.format(200_001)),
        ("-" * 100_000 + "1", TOO_LONG.format(100_001)),
        ("(" * 100_000, TOO_LONG.format(100_000)),
        ("not " * 40 + "true", TOO_DEEP.format(129)),
        ("-" * 40 + "vix > 0", TOO_DEEP.format(33)),
        ("(" * 40 + "true" + ")" * 40, TOO_DEEP.format(33)),
        (" + ".join(["vix"] * 40) + " > 0", TOO_DEEP.format(55)),  # the 10th term, 33 deep
        (" and ".join(["true"] * 201), TOO_MANY.format(901)),  # the 201st token
    ],
    ids=["not-run", "sign-run", "open-brackets", "not", "signs", "brackets", "sum", "and"],
)
def test_expression_past_a_bound_names_file_line_and_rule(
    tmp_path: Path, expr: str, message: str
) -> None:
    path = write_pack(tmp_path, expr=expr)
    assert refusal(path) == f"{path}:10: rule 'Huge': field expr: {message}"


def test_one_token_of_many_nodes_is_bounded_on_the_tree(tmp_path: Path) -> None:
    path = write_pack(tmp_path, expr="f'" + "{vix}" * 150 + "' == 'x'")
    prefix = f"{path}:10: rule 'Huge': field expr: the expression has too many terms: more than 200"
    assert refusal(path).startswith(prefix)


def test_hundred_thousand_and_terms_are_refused_by_length_and_by_file_size(
    tmp_path: Path,
) -> None:
    source = " and ".join(["spx > 0"] * 100_000)
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source, catalogue(Scope.BOOK))
    assert caught.value.message == "the expression is too long: 1,199,995 characters, at most 2,000"
    path = write_pack(tmp_path, expr=source)  # a file that size is refused before parsing
    assert refusal(path) == f"{path}: the rule file is too large: more than 262,144 bytes"


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        ("x" * 2001, "the template is too long: 2,001 characters, at most 2,000"),
        ("{vix}" * 51, "the template has too many fields: more than 50"),
    ],
)
def test_template_past_a_bound_names_file_line_and_rule(
    tmp_path: Path, summary: str, message: str
) -> None:
    path = write_pack(tmp_path, summary=summary)
    assert refusal(path) == f"{path}:10: rule 'Huge': field summary: {message}"


def test_file_past_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    path = write_pack(tmp_path)
    with path.open("a") as stream:
        stream.write("# padding\n" * 30_000)
    assert refusal(path) == f"{path}: the rule file is too large: more than 262,144 bytes"


def rules_text(count: int) -> str:
    rule = (
        "      - {{alert: R{0}, expr: vix > {0}, severity: info, value: vix, unit: p, summary: x}}"
    )
    return "groups:\n  - name: g\n    rules:\n" + "".join(
        rule.format(n) + "\n" for n in range(count)
    )


def test_file_past_the_rule_count_bound_names_the_first_rule_beyond(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(rules_text(250))
    assert len(load_rule_set([path]).rules) == 250
    path.write_text(rules_text(251))
    assert refusal(path) == f"{path}:254: the rule file holds 251 rules, at most 250"


def test_rules_repeated_by_aliases_count_once_each(tmp_path: Path) -> None:
    rule = "&r {alert: R, expr: vix > 1, severity: info, value: vix, unit: p, summary: x}"
    group = f"&g {{name: g, rules: [{rule}{', *r' * 19}]}}"
    path = tmp_path / "aliases.yaml"
    path.write_text(f"groups: [{group}{', *g' * 19}]\n")
    assert refusal(path) == f"{path}:1: the rule file holds 400 rules, at most 250"


def test_nested_aliases_are_refused_before_they_are_expanded(tmp_path: Path) -> None:
    lines = ["groups: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"x{n + 1}: &a{n + 1} [{', '.join([f'*a{n}'] * 10)}]" for n in range(20)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")  # 10**21 nodes once expanded
    message = "not valid YAML: more than 50,000 nodes once its aliases are expanded"
    assert refusal(path) == f"{path}:5: {message}"


def test_control_character_is_a_one_line_error_with_its_line(tmp_path: Path) -> None:
    path = write_pack(tmp_path, summary="VIX high")
    path.write_text(path.read_text().replace("VIX high", "VIX \x01 high"))
    message = "not valid YAML: character #x0001: special characters are not allowed"
    assert refusal(path) == f"{path}:15: {message}"


def test_memory_error_while_compiling_is_a_config_error_naming_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = loader.compile_expression

    def exhausted(source: str, names: Mapping[str, VarType]) -> expressions.Expression:
        if source == "vix > 30":
            raise MemoryError
        return real(source, names)

    monkeypatch.setattr(loader, "compile_expression", exhausted)
    path = write_pack(tmp_path)
    assert refusal(path) == f"{path}:10: rule 'Huge': too large to compile"


def test_memory_error_while_parsing_yaml_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted(self: object) -> None:
        raise MemoryError

    monkeypatch.setattr(loader._SafeLoader, "get_single_node", exhausted)
    path = write_pack(tmp_path)
    assert refusal(path) == f"{path}: not valid YAML: too large to load"


SHIPPED = [REPO / "rules", REPO / "monitor" / "bundled" / "rules"]


@pytest.mark.parametrize("pack", SHIPPED, ids=["rules", "bundled"])
def test_shipped_packs_load_within_a_quarter_of_every_bound(
    pack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module, name in [
        (expressions, "MAX_EXPRESSION_CHARS"),
        (expressions, "MAX_EXPRESSION_DEPTH"),
        (expressions, "MAX_EXPRESSION_TERMS"),
        (templates, "MAX_TEMPLATE_CHARS"),
        (templates, "MAX_TEMPLATE_FIELDS"),
        (loader, "MAX_RULE_FILE_BYTES"),
        (loader, "MAX_YAML_NODES"),
        (loader, "MAX_RULES_PER_FILE"),
    ]:
        monkeypatch.setattr(module, name, getattr(module, name) // 4)
    assert len(load_rule_set([pack]).rules) >= 19
