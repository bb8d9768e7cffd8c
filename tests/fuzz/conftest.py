"""Hypothesis profiles of the fuzz tests: quick and deterministic for CI, long for nightly.

``HYPOTHESIS_PROFILE=nightly pytest tests/fuzz`` runs the long one. The profile is applied to
the fuzz tests only (``@FUZZ``), so other hypothesis tests in the same session keep theirs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SLOW_INPUTS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

settings.register_profile(
    "fuzz-ci",
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI failures reproduce
    database=None,
    suppress_health_check=SLOW_INPUTS,
    print_blob=True,
)
settings.register_profile(
    "fuzz-nightly",
    max_examples=5000,
    deadline=None,
    derandomize=False,
    suppress_health_check=SLOW_INPUTS,
    print_blob=True,
)

FUZZ = settings.get_profile(f"fuzz-{os.environ.get('HYPOTHESIS_PROFILE', 'ci')}")
