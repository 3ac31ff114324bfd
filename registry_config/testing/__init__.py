"""A test kit for stagers and backend authors: the conformance suite, a Consul simulator, fakes.

Everything here is public and shipped with the package, so a downstream
project tests against the same simulator and the same promises the built-in
backends are held to. Nothing here imports pytest until a test runs.
"""

from __future__ import annotations

from .conformance import BackendConformance
from .consul import ConsulSimulator, Fault, RecordedRequest
from .fakes import FakeBackend

__all__ = ["BackendConformance", "ConsulSimulator", "FakeBackend", "Fault", "RecordedRequest"]
