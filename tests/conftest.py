"""Settings of the whole test suite: the hypothesis budgets, registered and loaded once here.

"ci" (the default: fixed, derandomized, fast) and "long" (2000 examples); select with the
environment: HYPOTHESIS_PROFILE=long pytest tests/test_properties.py
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
