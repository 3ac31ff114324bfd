"""The exceptions of registry-config, under one root.

Catch :class:`RegistryConfigError` to catch anything this library raises on
purpose. Every leaf also derives from the builtin that fits, so code that
already catches ``ValueError`` or ``LookupError`` keeps working::

    RegistryConfigError
    ├── InvalidInput (ValueError)
    │   ├── InvalidRegistryURL
    │   ├── InvalidAddress
    │   ├── InvalidImageReference
    │   └── InvalidEgressRule
    ├── UnknownBackendError (LookupError)
    ├── EgressPolicyError
    ├── ProbeError
    └── DiscoveryError
        ├── DiscoveryUnavailable   connection refused, timeout, 5xx, 429
        ├── DiscoveryAuthError     403: ACL not found, permission denied
        ├── DiscoveryProtocolError the answer is not what the protocol documents
        └── NoInstancesError (LookupError)

Messages say what was wrong, where, and what to do next. None of them ever
carries a secret (a Consul token, a password in a URL): code that builds one
from user input must redact first.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DiscoveryAuthError",
    "DiscoveryError",
    "DiscoveryProtocolError",
    "DiscoveryUnavailable",
    "EgressPolicyError",
    "InvalidAddress",
    "InvalidEgressRule",
    "InvalidImageReference",
    "InvalidInput",
    "InvalidRegistryURL",
    "NoInstancesError",
    "ProbeError",
    "RegistryConfigError",
    "UnknownBackendError",
]


class RegistryConfigError(Exception):
    """Root of every exception this library raises on purpose."""


class InvalidInput(RegistryConfigError, ValueError):
    """Some text or value handed to the library does not follow its format."""


class InvalidRegistryURL(InvalidInput):
    """A registry URL that cannot be used (no scheme, user-info, bad port...)."""


class InvalidAddress(InvalidInput):
    """An address, ``host:port`` entry or network that cannot be used."""


class InvalidImageReference(InvalidInput):
    """A Docker image reference that breaks the reference grammar."""


class InvalidEgressRule(InvalidInput):
    """An egress rule that Diego's BBS would refuse."""


class UnknownBackendError(RegistryConfigError, LookupError):
    """No discovery backend is registered under the name asked for."""


class EgressPolicyError(RegistryConfigError):
    """The egress guard refused an instance and was told to fail, not drop."""


class ProbeError(RegistryConfigError):
    """A registry probe could not even be attempted (bad arguments, bad CA file)."""


class DiscoveryError(RegistryConfigError):
    """Finding the registry's instances failed.

    ``causes`` holds the underlying discovery errors when several backends were
    tried (see ``FallbackBackend``); it is empty otherwise.
    """

    def __init__(self, message: str, *, causes: Sequence[BaseException] = ()) -> None:
        super().__init__(message)
        self.causes: tuple[BaseException, ...] = tuple(causes)


class DiscoveryUnavailable(DiscoveryError):
    """The discovery service could not answer: refused, timed out, 5xx, 429."""


class DiscoveryAuthError(DiscoveryError):
    """The discovery service refused our credentials (Consul's 403)."""


class DiscoveryProtocolError(DiscoveryError):
    """The discovery service answered something its protocol does not allow."""


class NoInstancesError(DiscoveryError, LookupError):
    """No usable registry instance is left to stage from."""
