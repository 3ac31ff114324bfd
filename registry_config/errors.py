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
    │   └── MissingDependencyError  the backend is known, its extra is not installed
    ├── EgressPolicyError
    ├── ProbeError                  a registry that cannot be reached, fails TLS, or is not a registry
    ├── ImageNotFoundError (LookupError)   repository, tag or digest unknown
    ├── RegistryAuthError           credentials missing or refused by a registry
    ├── ReplicaMismatchError        registry instances serve different digests for one tag
    └── DiscoveryError
        ├── DiscoveryUnavailable   connection refused, timeout, 5xx, 429
        ├── DiscoveryAuthError     403: ACL not found, permission denied
        ├── DiscoveryProtocolError the answer is not what the protocol documents
        ├── DiscoveryQueryError (ValueError)  the query cannot be answered as asked (a refused filter)
        └── NoInstancesError (LookupError)

Warnings are not errors: what a user should know about their input or output
(a name a runtime refuses, an implied port, an option without effect) is a
:class:`RegistryConfigWarning` through Python's :mod:`warnings`.

Messages say what was wrong, where, and what to do next. None of them ever
carries a secret (a Consul token, a password in a URL): code that builds one
from user input must redact first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "DiscoveryAuthError",
    "DiscoveryError",
    "DiscoveryProtocolError",
    "DiscoveryQueryError",
    "DiscoveryUnavailable",
    "EgressPolicyError",
    "ImageNotFoundError",
    "InvalidAddress",
    "InvalidEgressRule",
    "InvalidImageReference",
    "InvalidInput",
    "InvalidRegistryURL",
    "MissingDependencyError",
    "NoInstancesError",
    "ProbeError",
    "RegistryAuthError",
    "RegistryConfigError",
    "RegistryConfigWarning",
    "ReplicaMismatchError",
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


class MissingDependencyError(UnknownBackendError):
    """The backend is known, but the optional dependency (the extra) it needs is not installed."""


class EgressPolicyError(RegistryConfigError):
    """The egress guard refused an instance and was told to fail, not drop."""


class ProbeError(RegistryConfigError):
    """A registry cannot be asked: bad arguments or CA file, unreachable, TLS failure, or not a registry."""


class ImageNotFoundError(RegistryConfigError, LookupError):
    """The registry does not know the repository, tag or digest asked for."""


class RegistryAuthError(RegistryConfigError):
    """The registry wants credentials that were not given, or refused those given."""


class ReplicaMismatchError(RegistryConfigError):
    """Instances of one registry disagree on what a tag points to (or some lack it).

    ``digests`` maps each instance asked (``ip:port``) to the digest it
    served, or ``None`` where it lacked the tag.
    """

    def __init__(self, message: str, *, digests: Mapping[str, str | None] | None = None) -> None:
        super().__init__(message)
        self.digests: Mapping[str, str | None] = dict(digests or {})


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


class DiscoveryQueryError(DiscoveryError, ValueError):
    """The query cannot be answered as asked: a filter or parameter combination the service refuses.

    The user must change the query; retrying it unchanged cannot help, so a
    watch stops on it.
    """


class NoInstancesError(DiscoveryError, LookupError):
    """No usable registry instance is left to stage from."""


class RegistryConfigWarning(UserWarning):
    """Something a user should know about their input or output, issued with :func:`warnings.warn`.

    Where a plan exists, the same text is also one of ``plan.warnings``.
    Operational events (retries, back-off, a stale snapshot served) are log
    records instead.
    """
