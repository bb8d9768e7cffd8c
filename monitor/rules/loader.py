"""Rule packs: YAML files shaped like Prometheus alerting rules, compiled once at load.

Every problem is a ConfigError naming the file, the line of the rule, the rule and the
field (and the column within an expression). A file is bounded before it is parsed (its size),
as a YAML tree before it is built into Python objects (its nodes with every alias written
out, its number of rules), and each expression and template when it compiles, so no rule
file can exhaust the loader's memory or stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.domain.alerts import InhibitRule, Matcher, Severity
from monitor.errors import ConfigError
from monitor.rules.expressions import Expression, ExpressionError, VarType, compile_expression
from monitor.rules.templates import Template, TemplateError, compile_template
from monitor.rules.variables import Scope, catalogue
from monitor.tomlfile import describe_validation_error

# The default pack: 15 KB, about 560 YAML nodes, 22 rules. Far above any real pack, far below a
# file that takes seconds to parse (pure-Python YAML runs at about 100 KB a second).
MAX_RULE_FILE_BYTES = 256 * 1024
MAX_YAML_NODES = 50_000  # aliases written out: ten aliases of ten aliases ... grow tenfold each
MAX_RULES_PER_FILE = 250

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
RULE_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"


def parse_duration(text: str) -> timedelta:
    """'90s', '5m', '1h30m', '0s' -> timedelta (Prometheus style, no fractions)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"duration {text!r} is not like 30s, 5m or 1h30m")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    try:
        return timedelta(hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"duration {text!r} is too long") from None


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    alert: Annotated[str, Field(pattern=RULE_NAME)]
    expr: str
    for_each: Scope = Scope.BOOK
    for_: Annotated[str, Field(alias="for")] = "0s"
    keep_firing_for: str = "0s"
    repeat_interval: str | None = None
    clear: str | None = None
    severity: Severity
    value: str
    unit: Annotated[str, Field(min_length=1)]
    labels: dict[str, str] = Field(default_factory=dict)
    summary: Annotated[str, Field(min_length=1)]
    action: str | None = None

    @field_validator("for_", "keep_firing_for")
    @classmethod
    def _duration(cls, text: str) -> str:
        parse_duration(text)
        return text

    @field_validator("repeat_interval")
    @classmethod
    def _positive(cls, text: str | None) -> str | None:
        if text is not None and parse_duration(text) <= timedelta(0):
            raise ValueError(f"duration {text!r} must be positive")
        return text


class GroupSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    rules: Annotated[list[RuleSpec], Field(min_length=1)]


class InhibitSpec(BaseModel):
    """While an alert matching ``source`` fires, alerts matching ``target`` are not sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Annotated[dict[str, str], Field(min_length=1)]
    target: Annotated[dict[str, str], Field(min_length=1)]
    equal: list[str] = Field(default_factory=list)


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: list[GroupSpec] = Field(default_factory=list)
    inhibit_rules: list[InhibitSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.groups and not self.inhibit_rules:
            raise ValueError("a rule file holds groups of rules, inhibit_rules, or both")
        return self


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: list[Rule]
    inhibit_rules: list[InhibitRule]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    group: str
    source: str  # file:line, for logs
    scope: Scope
    condition: Expression
    clear: Expression | None
    hold: timedelta
    keep_firing_for: timedelta
    repeat_interval: timedelta | None
    severity: Severity
    value: Expression
    unit: str
    labels: tuple[tuple[str, str], ...]
    summary: Template
    action: Template | None

    @property
    def names(self) -> frozenset[str]:
        """Every variable the rule reads: expressions and message templates."""
        used = self.condition.names | self.value.names | self.summary.names
        if self.clear is not None:
            used |= self.clear.names
        if self.action is not None:
            used |= self.action.names
        return used - {"value"}


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader whose scalars that cannot be built (a date 2026-02-30, an integer past
    Python's digit limit, ``!!bool maybe``) are YAML errors with their line, not whatever
    PyYAML's constructor happened to raise."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:
            problem = str(exc)
        except (LookupError, AttributeError):  # an explicit tag on text that does not fit it
            problem = f"the value does not fit its tag {node.tag}"
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expanded_size(path: Path, root: yaml.Node) -> None:
    """Refuses a tree of more than MAX_YAML_NODES nodes once every alias is expanded (as
    validation would walk it), counted without expanding: each node once, in a loop."""
    size: dict[int, int] = {}
    inside: set[int] = set()  # the nodes whose children are being counted
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    while pending:
        node, counted = pending.pop()
        key = id(node)
        if counted:
            inside.discard(key)
            size[key] = 1 + sum(size[id(child)] for child in _children(node))
            if size[key] > MAX_YAML_NODES:
                raise ConfigError(
                    path,
                    f"not valid YAML: more than {MAX_YAML_NODES:,} nodes once its aliases "
                    "are expanded",
                    line=node.start_mark.line + 1,
                )
        elif key in inside:
            raise ConfigError(
                path,
                "not valid YAML: an alias refers to a node that holds it",
                line=node.start_mark.line + 1,
            )
        elif key not in size:
            inside.add(key)
            pending.append((node, True))
            pending.extend((child, False) for child in _children(node))


def _rule_lines(root: yaml.Node | None) -> dict[tuple[int, int], int]:
    """(group index, rule index) -> 1-based line of the rule, from the YAML node tree."""
    lines: dict[tuple[int, int], int] = {}

    def child(node: yaml.Node | None, key: str) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if getattr(k, "value", None) == key and isinstance(v, yaml.Node):
                    return v
        return None

    groups = child(root, "groups")
    for gi, group in enumerate(_children(groups) if groups is not None else []):
        rules = child(group, "rules")
        for ri, rule in enumerate(_children(rules) if rules is not None else []):
            lines[(gi, ri)] = rule.start_mark.line + 1
    return lines


def _read(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_RULE_FILE_BYTES + 1)  # never more, whatever the file holds
    except FileNotFoundError:
        raise ConfigError(path, "no such rule file") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read ({exc})") from None
    if len(raw) > MAX_RULE_FILE_BYTES:
        raise ConfigError(
            path, f"the rule file is too large: more than {MAX_RULE_FILE_BYTES:,} bytes"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"cannot read ({exc})") from None


def _load_yaml(path: Path, text: str) -> tuple[Any, dict[tuple[int, int], int]]:
    """The document and the line of each rule; the tree is checked before it is built."""
    try:
        loader = _SafeLoader(text)  # refuses control characters at once
    except yaml.reader.ReaderError as exc:
        at = text.count("\n", 0, exc.position) + 1
        problem = f"character #x{exc.character:04x}: {exc.reason}"
        raise ConfigError(path, f"not valid YAML: {problem}", line=at) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, {}
        _check_expanded_size(path, root)
        lines = _rule_lines(root)
        if len(lines) > MAX_RULES_PER_FILE:
            beyond = list(lines.values())[MAX_RULES_PER_FILE]  # in document order
            raise ConfigError(
                path,
                f"the rule file holds {len(lines):,} rules, at most {MAX_RULES_PER_FILE}",
                line=beyond,
            )
        return loader.construct_document(root), lines
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            path, f"not valid YAML: {getattr(exc, 'problem', exc)}", line=line
        ) from None
    except RecursionError:
        raise ConfigError(path, "not valid YAML: nested too deeply") from None
    except MemoryError:  # a guard: the size bound keeps the parser far from it
        raise ConfigError(path, "not valid YAML: too large to load") from None
    finally:
        loader.dispose()


def _compile_rule(spec: RuleSpec, group: str, path: Path, line: int | None) -> Rule:
    names = catalogue(spec.for_each)
    where = f"rule {spec.alert!r}"

    def fail(field: str, exc: Exception) -> ConfigError:
        return ConfigError(path, f"{where}: field {field}: {exc}", line=line)

    def expression(field: str, source: str, want: VarType) -> Expression:
        try:
            compiled = compile_expression(source, names)
        except ExpressionError as exc:
            raise fail(field, exc) from None
        if compiled.type is not want:
            raise fail(field, ValueError(f"must give a {want.value}, not a {compiled.type.value}"))
        return compiled

    condition = expression("expr", spec.expr, VarType.BOOL)
    clear = expression("clear", spec.clear, VarType.BOOL) if spec.clear else None
    value = expression("value", spec.value, VarType.NUMBER)
    with_value = {**names, "value": VarType.NUMBER}
    try:
        summary = compile_template(spec.summary, with_value)
    except TemplateError as exc:
        raise fail("summary", exc) from None
    try:
        action = compile_template(spec.action, with_value) if spec.action else None
    except TemplateError as exc:
        raise fail("action", exc) from None
    return Rule(
        spec.alert,
        group,
        f"{path}:{line}" if line else str(path),
        spec.for_each,
        condition,
        clear,
        parse_duration(spec.for_),
        parse_duration(spec.keep_firing_for),
        parse_duration(spec.repeat_interval) if spec.repeat_interval else None,
        spec.severity,
        value,
        spec.unit,
        tuple(sorted(spec.labels.items())),
        summary,
        action,
    )


def _compile_rules(spec: RuleFile, path: Path, lines: dict[tuple[int, int], int]) -> list[Rule]:
    rules = []
    for gi, group in enumerate(spec.groups):
        for ri, rule in enumerate(group.rules):
            line = lines.get((gi, ri))
            try:
                rules.append(_compile_rule(rule, group.name, path, line))
            except (RecursionError, MemoryError) as exc:  # a guard: the bounds keep these away
                where = f"rule {rule.alert!r}"
                problem = "nested too deeply" if isinstance(exc, RecursionError) else "too large"
                raise ConfigError(path, f"{where}: {problem} to compile", line=line) from None
    return rules


def _parse_file(path: Path) -> tuple[list[Rule], list[InhibitRule]]:
    data, lines = _load_yaml(path, _read(path))
    try:
        spec = RuleFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, describe_validation_error(exc)) from None
    rules = _compile_rules(spec, path, lines)
    inhibits = [
        InhibitRule(
            tuple(Matcher(k, v) for k, v in sorted(i.source.items())),
            tuple(Matcher(k, v) for k, v in sorted(i.target.items())),
            tuple(i.equal),
        )
        for i in spec.inhibit_rules
    ]
    return rules, inhibits


def load_rule_file(path: Path) -> list[Rule]:
    return _parse_file(path)[0]


def _files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise ConfigError(path, "the rule directory holds no *.yaml file")
            files.extend(found)
        else:
            files.append(path)
    return files


def load_rule_set(paths: list[Path]) -> RuleSet:
    """Loads rule files and directories (every *.yaml / *.yml inside, in name order)."""
    rules: list[Rule] = []
    inhibits: list[tuple[Path, InhibitRule]] = []
    seen: dict[str, str] = {}
    for file in _files(paths):
        file_rules, file_inhibits = _parse_file(file)
        for rule in file_rules:
            if rule.name in seen:
                raise ConfigError(
                    file, f"rule {rule.name!r} is already defined at {seen[rule.name]}"
                )
            seen[rule.name] = rule.source
            rules.append(rule)
        inhibits.extend((file, i) for i in file_inhibits)
    for file, inhibit in inhibits:
        for matcher in inhibit.source:
            if matcher.name == "alertname" and matcher.value not in seen:
                raise ConfigError(
                    file, f"inhibit_rules: source alertname {matcher.value!r} is not a loaded rule"
                )
    return RuleSet(rules, [i for _, i in inhibits])


def load_rules(paths: list[Path]) -> list[Rule]:
    return load_rule_set(paths).rules
