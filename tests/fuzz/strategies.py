"""Inputs shared by the fuzz tests: JSON values that parsers meet at their edges, and
mutations of valid text."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Lone surrogates are what a JSON "\ud800" escape decodes to: a str that is not text.
SURROGATES = st.characters(categories=["Cs"])
TEXT = st.text(st.one_of(st.characters(), SURROGATES), max_size=20) | st.sampled_from(
    ["", " ", "~", "~nosuchuser/x", "\x00", "NaN", "Infinity", "-0", "1e400", "true"]
)
NUMBERS = st.one_of(
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**63, 2**64, 10**400, -(10**400), 1e308, 5e-324, -0.0]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_lines(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few of its lines deleted, repeated, swapped, cut or edited by character."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines.append("")
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(
            st.sampled_from(["delete", "repeat", "swap", "cut", "insert", "replace", "chars"])
        )
        if action == "delete":
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[at])
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif action == "cut":
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        elif action == "insert":
            lines.insert(at, draw(st.text(max_size=30)))
        elif action == "replace":
            line = lines[at]
            start = draw(st.integers(0, len(line)))
            end = draw(st.integers(start, len(line)))
            lines[at] = line[:start] + draw(st.text(max_size=10)) + line[end:]
        else:
            chars = list(lines[at]) or [""]
            index = draw(st.integers(0, len(chars) - 1))
            chars[index] = draw(st.characters())
            lines[at] = "".join(chars)
    return "\n".join(lines) + "\n"


@st.composite
def mutated_mapping(draw: st.DrawFn, base: dict[str, Any], values: st.SearchStrategy[Any]) -> Any:
    """``base`` with fields dropped, added or given other values."""
    obj = dict(base)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "add" or not obj:
            obj[draw(TEXT | st.sampled_from(sorted(base)))] = draw(values)
        elif action == "drop":
            del obj[draw(st.sampled_from(sorted(obj)))]
        else:
            obj[draw(st.sampled_from(sorted(obj)))] = draw(values)
    return obj


@st.composite
def mutated_tree(draw: st.DrawFn, tree: Any, values: st.SearchStrategy[Any]) -> Any:
    """``tree`` with one node somewhere inside replaced, dropped, or given a new key."""
    if isinstance(tree, dict) and tree and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(tree)))
        action = draw(st.sampled_from(["descend", "descend", "replace", "drop", "add"]))
        out = dict(tree)
        if action == "descend":
            out[key] = draw(mutated_tree(tree[key], values))
        elif action == "replace":
            out[key] = draw(values)
        elif action == "drop":
            del out[key]
        else:
            out[draw(TEXT | st.sampled_from(sorted(tree)))] = draw(values)
        return out
    if isinstance(tree, list) and tree and draw(st.integers(0, 3)):
        at = draw(st.integers(0, len(tree) - 1))
        action = draw(st.sampled_from(["descend", "descend", "drop", "repeat"]))
        out_list = list(tree)
        if action == "descend":
            out_list[at] = draw(mutated_tree(tree[at], values))
        elif action == "drop":
            del out_list[at]
        else:
            out_list.insert(at, tree[at])
        return out_list
    return draw(values)
