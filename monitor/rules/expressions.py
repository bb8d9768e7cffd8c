"""A small, safe expression language for rules, compiled once at load time.

Expressions use Python syntax restricted to a whitelist: numbers, strings, true/false,
dotted variable names from the catalogue, arithmetic, comparisons, and/or/not, and the
functions abs, min and max. Every name is checked against the catalogue and every operator
against the types of its operands when the rule loads, so a typo or a type error is a
load-time error with its column, never a surprise during the session. Compiled expressions
are trees of closures: no eval, no access to Python objects.

An expression is bounded before it reaches the parser (its length, then a linear token scan
for bracket depth, runs of signs and ``not``, and its number of terms) and again on the
syntax tree (its nodes and their depth), so a rule file cannot make the loader run out of
memory or stack: a rule is a few comparisons, and a text past these bounds is refused.
"""

from __future__ import annotations

import ast
import difflib
import io
import math
import operator
import tokenize
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

# The default pack's largest expressions: 88 characters, 19 tokens, 15 expression nodes, 5
# levels deep. These bounds are far above any real rule and far below what strains Python's
# parser (which needs memory for every level of nesting) or this recursive compiler.
MAX_EXPRESSION_CHARS = 2_000
MAX_EXPRESSION_DEPTH = 32  # brackets, signs, not, attribute dots, chained arithmetic
MAX_EXPRESSION_TERMS = 200  # tokens before parsing; expression nodes of the syntax tree after

Value = float | bool | str
Variables = Mapping[str, Value]
Evaluator = Callable[[Variables], Value]


class VarType(StrEnum):
    NUMBER = "number"
    BOOL = "bool"
    STRING = "string"


class ExpressionError(ValueError):
    """A rejected expression; ``column`` is 1-based within the expression text."""

    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"{message} (at column {column})")


@dataclass(frozen=True, slots=True)
class Expression:
    source: str
    type: VarType
    names: frozenset[str]
    evaluate: Evaluator


def _safe_div(a: float, b: float) -> float:
    # A rule dividing by a zero exposure must not crash the pipeline: NaN compares false.
    return a / b if b != 0 else math.nan


def _safe_mod(a: float, b: float) -> float:
    return a % b if b != 0 else math.nan


_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _safe_div,
    ast.Mod: _safe_mod,
}
_ORDERING: dict[type[ast.cmpop], Callable[[Value, Value], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_EQUALITY: dict[type[ast.cmpop], Callable[[Value, Value], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCTIONS: dict[str, tuple[int, int | None]] = {"abs": (1, 1), "min": (2, None), "max": (2, None)}
_LITERALS = {"true": True, "false": False}


def _column(node: ast.AST) -> int:
    return getattr(node, "col_offset", 0) + 1


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base is not None else None
    return None


class _Compiler:
    def __init__(self, catalogue: Mapping[str, VarType]) -> None:
        self.catalogue = catalogue
        self.names: set[str] = set()

    def compile(self, node: ast.expr) -> tuple[VarType, Evaluator]:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name | ast.Attribute):
            return self._variable(node)
        if isinstance(node, ast.BoolOp):
            return self._bool_op(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise ExpressionError(f"{type(node).__name__} is not allowed in a rule", _column(node))

    def _constant(self, node: ast.Constant) -> tuple[VarType, Evaluator]:
        value = node.value
        if isinstance(value, bool):
            kind = VarType.BOOL
        elif isinstance(value, int | float):
            try:
                kind, value = VarType.NUMBER, float(value)
            except OverflowError:  # an integer literal beyond the float range
                raise ExpressionError("number is too large", _column(node)) from None
        elif isinstance(value, str):
            kind = VarType.STRING
        else:
            raise ExpressionError(f"constant {value!r} is not allowed", _column(node))
        constant: Value = value
        return kind, lambda _v: constant

    def _variable(self, node: ast.Name | ast.Attribute) -> tuple[VarType, Evaluator]:
        name = _dotted(node)
        if name is None:
            raise ExpressionError("only dotted variable names are allowed", _column(node))
        if name in _LITERALS:
            literal = _LITERALS[name]
            return VarType.BOOL, lambda _v: literal
        kind = self.catalogue.get(name)
        if kind is None:
            close = difflib.get_close_matches(name, list(self.catalogue), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ExpressionError(f"unknown variable {name!r}{hint}", _column(node))
        self.names.add(name)
        return kind, lambda v: v[name]

    def _expect(self, node: ast.expr, want: VarType, role: str) -> Evaluator:
        kind, fn = self.compile(node)
        if kind is not want:
            raise ExpressionError(
                f"{role} must be a {want.value}, not a {kind.value}", _column(node)
            )
        return fn

    def _bool_op(self, node: ast.BoolOp) -> tuple[VarType, Evaluator]:
        parts = [self._expect(v, VarType.BOOL, "an operand of and/or") for v in node.values]
        if isinstance(node.op, ast.And):
            return VarType.BOOL, lambda v: all(p(v) for p in parts)
        return VarType.BOOL, lambda v: any(p(v) for p in parts)

    def _unary(self, node: ast.UnaryOp) -> tuple[VarType, Evaluator]:
        if isinstance(node.op, ast.Not):
            inner = self._expect(node.operand, VarType.BOOL, "the operand of not")
            return VarType.BOOL, lambda v: not inner(v)
        if isinstance(node.op, ast.USub | ast.UAdd):
            num = self._expect(node.operand, VarType.NUMBER, "the operand of a sign")
            if isinstance(node.op, ast.USub):
                return VarType.NUMBER, lambda v: -float(num(v))
            return VarType.NUMBER, num
        raise ExpressionError("bitwise operators are not allowed", _column(node))

    def _binary(self, node: ast.BinOp) -> tuple[VarType, Evaluator]:
        op = _ARITHMETIC.get(type(node.op))
        if op is None:
            raise ExpressionError(
                f"operator {type(node.op).__name__} is not allowed (use + - * / %)", _column(node)
            )
        left = self._expect(node.left, VarType.NUMBER, "an arithmetic operand")
        right = self._expect(node.right, VarType.NUMBER, "an arithmetic operand")
        return VarType.NUMBER, lambda v: op(float(left(v)), float(right(v)))

    def _compare(self, node: ast.Compare) -> tuple[VarType, Evaluator]:
        operands = [self.compile(node.left), *(self.compile(c) for c in node.comparators)]
        steps: list[tuple[Callable[[Value, Value], bool], Evaluator, Evaluator]] = []
        for index, op_node in enumerate(node.ops):
            (lkind, lfn), (rkind, rfn) = operands[index], operands[index + 1]
            column = _column(node.comparators[index])
            if type(op_node) in _ORDERING:
                if lkind is not VarType.NUMBER or rkind is not VarType.NUMBER:
                    raise ExpressionError(
                        f"ordering compares numbers, not {lkind.value} with {rkind.value}", column
                    )
                steps.append((_ORDERING[type(op_node)], lfn, rfn))
            elif type(op_node) in _EQUALITY:
                if lkind is not rkind:
                    raise ExpressionError(
                        f"cannot compare a {lkind.value} with a {rkind.value}", column
                    )
                steps.append((_EQUALITY[type(op_node)], lfn, rfn))
            else:
                raise ExpressionError(
                    f"comparison {type(op_node).__name__} is not allowed", _column(node)
                )
        return VarType.BOOL, lambda v: all(op(lf(v), rf(v)) for op, lf, rf in steps)

    def _call(self, node: ast.Call) -> tuple[VarType, Evaluator]:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS:
            raise ExpressionError(
                f"only the functions {', '.join(_FUNCTIONS)} may be called", _column(node)
            )
        if node.keywords:
            raise ExpressionError(f"{name}() takes no keyword arguments", _column(node))
        low, high = _FUNCTIONS[name]
        if len(node.args) < low or (high is not None and len(node.args) > high):
            raise ExpressionError(f"{name}() takes {low} or more arguments", _column(node))
        args = [self._expect(a, VarType.NUMBER, f"an argument of {name}()") for a in node.args]
        if name == "abs":
            only = args[0]
            return VarType.NUMBER, lambda v: abs(float(only(v)))
        pick = min if name == "min" else max
        return VarType.NUMBER, lambda v: pick(float(a(v)) for a in args)


_TOO_DEEP = f"the expression is nested too deeply: more than {MAX_EXPRESSION_DEPTH} levels"
_TOO_MANY = f"the expression has too many terms: more than {MAX_EXPRESSION_TERMS}"
_LAYOUT = frozenset(
    {
        tokenize.NEWLINE,
        tokenize.NL,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.COMMENT,
        tokenize.ENDMARKER,
    }
)
_UNARY = frozenset({"not", "-", "+", "~"})  # each one of a run nests the rest one level
_OPEN = frozenset("([{")
_CLOSE = frozenset(")]}")


def _check_text(text: str) -> None:
    """Bounds on the text, in one linear pass, before the parser sees it."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"the expression is too long: {len(text):,} characters, "
            f"at most {MAX_EXPRESSION_CHARS:,}",
            1,
        )
    brackets = unary_run = terms = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in _LAYOUT:
                continue
            column = token.start[1] + 1
            terms += 1
            if terms > MAX_EXPRESSION_TERMS:
                raise ExpressionError(_TOO_MANY, column)
            unary_run = unary_run + 1 if token.string in _UNARY else 0
            if token.string in _OPEN:
                brackets += 1
            elif token.string in _CLOSE:
                brackets -= 1
            if brackets + unary_run > MAX_EXPRESSION_DEPTH:
                raise ExpressionError(_TOO_DEEP, column)
    except (tokenize.TokenError, SyntaxError):
        # The text is short enough by now: the parser gives the better message.
        return


def _check_tree(tree: ast.Expression) -> None:
    """Bounds on the syntax tree (an f-string is one token but many nodes)."""
    terms = 0
    pending: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, ast.expr):
            terms += 1
            if terms > MAX_EXPRESSION_TERMS:
                raise ExpressionError(_TOO_MANY, _column(node))
            if depth > MAX_EXPRESSION_DEPTH:
                raise ExpressionError(_TOO_DEEP, _column(node))
        inner = depth + isinstance(node, ast.expr)
        pending.extend((child, inner) for child in ast.iter_child_nodes(node))


def _parse(text: str) -> ast.Expression:
    _check_text(text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        # Python reports offset 0 when the text ends too early: point just past the end.
        column = min(exc.offset or len(text) + 1, len(text) + 1)
        raise ExpressionError(f"syntax error: {exc.msg}", max(column, 1)) from None
    except (RecursionError, MemoryError):  # the bounds above keep the parser far from these
        raise ExpressionError(_TOO_DEEP, 1) from None
    except ValueError as exc:  # null bytes, on the Python versions that raise this for them
        raise ExpressionError(f"syntax error: {exc}", 1) from None
    _check_tree(tree)
    return tree


def compile_expression(source: str, catalogue: Mapping[str, VarType]) -> Expression:
    """Compiles ``source`` against the variables of ``catalogue``; raises ExpressionError."""
    text = source.strip()
    if not text:
        raise ExpressionError("the expression is empty", 1)
    tree = _parse(text)
    compiler = _Compiler(catalogue)
    try:
        kind, fn = compiler.compile(tree.body)
    except RecursionError:  # kept as a guard: the depth bound keeps the compiler far from it
        raise ExpressionError(_TOO_DEEP, 1) from None
    return Expression(text, kind, frozenset(compiler.names), fn)
