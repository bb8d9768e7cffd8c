"""Cost of evaluating rules: our compiled expressions against Python's own compiled eval."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from benchmarks.timing import median_seconds
from monitor import bundled
from monitor.app import default_config
from monitor.backtest import replay_to_end
from monitor.portfolio.model import load_portfolio
from monitor.rules.engine import RuleEngine
from monitor.rules.loader import load_rule_set
from monitor.rules.variables import book_values

RULES = Path(__file__).resolve().parent.parent / "rules"
DOTTED = re.compile(r"(?<=[A-Za-z_])\.(?=[A-Za-z_])")  # the dot of a name, not of a number


def run() -> dict[str, float]:
    rule_set = load_rule_set([RULES])
    rules = rule_set.rules
    book = [r for r in rules if r.scope.value == "book"]
    config = default_config(Path.cwd())
    pipeline = replay_to_end(bundled.SESSION, config, load_portfolio(bundled.PORTFOLIO), rule_set)
    snapshot = pipeline.latest
    assert snapshot is not None
    values = book_values(snapshot)
    # The same expressions through Python's eval, names flattened: what a naive engine does.
    flat = {name.replace(".", "__"): value for name, value in values.items()}
    compiled = [compile(DOTTED.sub("__", r.condition.source), "<rule>", "eval") for r in book]
    builtins: dict[str, Any] = {"__builtins__": {"abs": abs, "min": min, "max": max}}

    def ours() -> None:
        for rule in book:
            rule.condition.evaluate(values)

    def python_eval() -> None:
        for code in compiled:
            eval(code, builtins, flat)  # noqa: S307 - the peer being measured

    engine = RuleEngine(rules)
    per_rule_ours = median_seconds(ours) / len(book)
    per_rule_eval = median_seconds(python_eval) / len(book)
    return {
        "rule_expr_us_ours": per_rule_ours * 1e6,
        "rule_expr_us_python_eval": per_rule_eval * 1e6,
        "rule_expr_ratio_vs_python_eval": per_rule_ours / per_rule_eval,
        "rules_in_default_pack": float(len(rules)),
        "rules_engine_evaluate_us_per_snapshot": median_seconds(lambda: engine.evaluate(snapshot))
        * 1e6,
    }
