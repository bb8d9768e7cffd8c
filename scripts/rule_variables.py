"""Rewrites the variables tables of docs/rules.md from the catalogue in monitor/rules/variables.py.

Run after adding a variable: `.venv/bin/python scripts/rule_variables.py`. A test fails
while the two disagree.
"""

from __future__ import annotations

from pathlib import Path

from monitor.rules.variables import BOOK_VARIABLES, SHORT_LEG_VARIABLES, STRATEGY_VARIABLES

DOC = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
SECTIONS = (
    ("Book (every rule)", BOOK_VARIABLES),
    ("Strategy (`for_each: strategy` and `for_each: short_leg`)", STRATEGY_VARIABLES),
    ("Short leg (`for_each: short_leg`)", SHORT_LEG_VARIABLES),
)


def tables() -> str:
    out = []
    for title, rows in SECTIONS:
        out.append(f"### {title}\n\n| variable | type | unit | meaning |\n|---|---|---|---|")
        out.extend(f"| `{v.name}` | {v.type.value} | {v.unit} | {v.meaning} |" for v in rows)
        out.append("")
    return "\n".join(out) + "\n"


def main() -> None:
    text = DOC.read_text()
    start = text.index("### Book (every rule)")
    end = text.index("## The default pack")
    DOC.write_text(text[:start] + tables() + text[end:])


if __name__ == "__main__":
    main()
