"""The docs list every rule variable with its type and unit, and the README every metric."""

from __future__ import annotations

import pytest
from conftest import REPO, run_pipeline

from monitor import bundled
from monitor.metrics import SnapshotCollector
from monitor.rules.variables import BOOK_VARIABLES, SHORT_LEG_VARIABLES, STRATEGY_VARIABLES

RULES_DOC = (REPO / "docs" / "rules.md").read_text()
README = (REPO / "README.md").read_text()


@pytest.mark.parametrize(
    "variable", [*BOOK_VARIABLES, *STRATEGY_VARIABLES, *SHORT_LEG_VARIABLES], ids=lambda v: v.name
)
def test_every_variable_is_documented_with_its_unit(variable) -> None:
    row = f"| `{variable.name}` | {variable.type.value} | {variable.unit} |"
    assert row in RULES_DOC


def test_every_metric_is_in_the_readme() -> None:
    """Names come from a real collection over a pipeline that has seen a few batches."""
    pipeline = run_pipeline(bundled.SESSION, bundled.PORTFOLIO, [REPO / "rules"], batches=3)
    names = {
        family.name if family.type == "histogram" else s.name  # one row for its series
        for family in SnapshotCollector(pipeline).collect()
        for s in family.samples
    }
    assert len(names) > 15
    missing = sorted(n for n in names if f"`{n}" not in README)
    assert missing == []
