"""The soak tests: the shortened soak runs in every test run; the eight-hour one only when
selected by its marker (``pytest -m soak``), and is skipped otherwise.

A skip in a hook, rather than ``-m "not soak"`` in ``addopts``, keeps a ``-m`` given on the
command line working as written.
"""

from __future__ import annotations

import re

import pytest

# "soak" named in the marker expression, and not as "not soak".
SELECTS_SOAK = re.compile(r"(?<!not )\bsoak\b")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SELECTS_SOAK.search(config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="an opt-in soak test: select it with `pytest -m soak`")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)
