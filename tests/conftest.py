from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# The machine is shared and noisy: no per-example deadline; CI runs more examples.
settings.register_profile("default", deadline=None, max_examples=100)
settings.register_profile("ci", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "clients: real container clients (skopeo, podman, buildah, ctr, dockerd) in a namespace of their own; "
        "CI runs them on the default Python only (-m 'not clients' elsewhere)",
    )
