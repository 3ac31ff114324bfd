"""Asking a live registry what it really speaks, and saying what to change when it is not what was configured.

Operators get the seed's three flavours wrong (an ``http`` URL for a TLS
registry, a self-signed certificate without ``skip_ssl_validation``), and the
original stager answered every such mistake with a bare "staging failed".
:func:`probe_registry` sends ``GET /v2/`` the configured way; when that fails
it tries the other ways (HTTPS verified, HTTPS unverified, plain HTTP) to find
what works, and says so in one sentence a person can act on.

Every request goes through the library's bounded transport
(:class:`registry_config.http.HttpClient`): ``timeout`` bounds each *whole*
request (connect, TLS, headers and body: an answer that drips a byte at a
time ends at the timeout), an answer larger than ``max_response_bytes`` ends
the attempt, a redirect is never followed (the diagnosis says where it
pointed, redacted), and no proxy or CA variable of the environment is read
(a probe through a proxy would test the proxy; ``REQUESTS_CA_BUNDLE`` must not
decide what verifies). Every failure of the network becomes a
:class:`ProbeResult` (its ``failure`` says which kind), never an exception.
A verified registry is asked once; a mismatch costs at most three requests;
a refused or silent port is asked once, so a dead registry costs one timeout.
"""

from __future__ import annotations

import enum
import http.client
import math
import os
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import attrs

from .address import format_host_port, split_host_port
from .credentials import Credentials
from .discovery.model import ServiceInstance
from .errors import ProbeError, RegistryAuthError
from .http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    HttpClient,
    RedirectRefused,
    ResponseTooLarge,
    TransportError,
    TransportProtocolError,
    TransportTimeout,
    TransportTLSError,
)
from .redact import quote
from .spec import RegistrySpec, SecurityMode

__all__ = ["ProbeResult", "probe_registry"]

API_VERSION_HEADER = "Docker-Distribution-API-Version"
_REGISTRY_STATUSES = (200, 401)
_BODY_PEEK = 4096
# What TLS servers answer to a plain-HTTP request on their port: Go's net/http
# (the distribution registry), nginx, and Apache.
_PLAIN_TO_TLS_MARKERS = (
    "client sent an http request to an https server",
    "the plain http request was sent to https port",
    "speaking plain http to an ssl-enabled server port",
)
# OpenSSL's reasons when the peer does not speak TLS at all.
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL", "HTTP_REQUEST", "PACKET_LENGTH")
_X509_EXPIRED = 10
_X509_NAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


class _Failure(enum.Enum):
    """Why one attempt got no HTTP answer."""

    UNTRUSTED = "untrusted"
    HOSTNAME = "hostname"
    EXPIRED = "expired"
    NOT_TLS = "not-tls"
    TLS = "tls"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    DNS = "dns"
    RESET = "reset"
    UNREACHABLE = "unreachable"
    TOO_LARGE = "too-large"
    OTHER = "other"


# Failures after which no other way of asking can get through: same host, same port.
_UNREACHABLE = (_Failure.REFUSED, _Failure.TIMEOUT, _Failure.DNS, _Failure.UNREACHABLE)
_CERTIFICATE = (_Failure.UNTRUSTED, _Failure.HOSTNAME, _Failure.EXPIRED)


@attrs.frozen
class _Attempt:
    """What one ``GET /v2/`` the ``mode`` way gave: an answer, or a failure and its detail."""

    mode: SecurityMode
    status: int | None = None
    api_version: str | None = None
    auth_challenge: str | None = None
    body: str = ""
    location: str | None = None
    failure: _Failure | None = None
    detail: str = ""

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def is_registry(self) -> bool:
        return (
            self.status in _REGISTRY_STATUSES
            and self.api_version is not None
            and self.api_version.strip().lower().startswith("registry/2.0")
        )

    @property
    def wants_tls(self) -> bool:
        """A plain-HTTP request that a TLS server refused, or redirected to https."""
        if self.mode is not SecurityMode.HTTP:
            return False
        if self.status == 400 and any(marker in self.body.lower() for marker in _PLAIN_TO_TLS_MARKERS):
            return True
        return self.status in (301, 302, 307, 308) and (self.location or "").lower().startswith("https://")


def _result_to_dict(result: ProbeResult) -> dict[str, Any]:
    return {
        "target": result.target,
        "reachable": result.reachable,
        "status": result.status,
        "api_version": result.api_version,
        "auth_challenge": result.auth_challenge,
        "observed": None if result.observed is None else result.observed.value,
        "matches": result.matches,
        "diagnosis": result.diagnosis,
        "failure": result.failure,
        "login": result.login,
        "instances": [_result_to_dict(instance) for instance in result.instances],
    }


def _results(value: Iterable[ProbeResult]) -> tuple[ProbeResult, ...]:
    return tuple(value)


@attrs.frozen
class ProbeResult:
    """What a registry (or one of its instances) answered, what it really speaks, and what to do about it.

    ``observed`` is the security mode that got a registry answer, judged with
    the trust the probe was given (the system's CAs, or ``ca_bundle``):
    ``None`` when nothing answered as a registry. ``matches`` says it answered
    the way the spec is configured; ``diagnosis`` is the sentence to show a
    person. ``target`` names what was probed (for an instance, its ``ip:port``
    and the name its certificate was checked against). ``failure`` is the
    kind of what went wrong with the configured way (see the attribute).
    """

    reachable: bool
    status: int | None
    api_version: str | None
    auth_challenge: str | None
    observed: SecurityMode | None
    matches: bool
    diagnosis: str
    instances: tuple[ProbeResult, ...] = attrs.field(default=(), converter=_results)
    target: str = attrs.field(default="", kw_only=True)
    failure: str | None = attrs.field(default=None, kw_only=True)
    """Why the configured way got no registry answer, as a kind a program can test: ``None`` when it did;
    ``"timeout"``, ``"too-large"``, ``"refused"``, ``"dns"``, ``"unreachable"``, ``"reset"``, ``"untrusted"``,
    ``"hostname"``, ``"expired"``, ``"not-tls"``, ``"tls"`` or ``"other"`` when the request failed;
    ``"redirect"``, ``"wants-tls"`` or ``"not-registry"`` when something answered, but not as a registry.
    """
    login: str | None = attrs.field(default=None, kw_only=True)
    """What the registry made of the credentials given to the probe: ``None`` when none were given or the
    registry asks for none; ``"accepted"`` or ``"refused"`` (the diagnosis says why)."""

    @property
    def ok(self) -> bool:
        """The registry and every instance probed answer as configured."""
        return self.matches and all(instance.ok for instance in self.instances)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``observed`` as its value text, instances nested)."""
        return _result_to_dict(self)

    def __str__(self) -> str:
        return self.diagnosis

    # Rich displays (registry_config.display renders them, as for plans and snapshots).

    def _repr_html_(self) -> str:
        """A compact HTML table for notebooks: answer, observed mode, verdict, diagnosis, instances."""
        from .display import probe_html

        return probe_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display: the report ``registry-config probe`` prints."""
        from .display import pretty, probe_text

        pretty(probe_text(self), "ProbeResult", printer, cycle)


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """``exc`` and everything it wraps: causes, contexts and exception arguments."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, *current.args]
        stack.extend(item for item in wrapped if isinstance(item, BaseException))


def _classify(exc: TransportError) -> tuple[_Failure, str]:
    """Why a request failed, and the lower layer's own words for it (the transport's are redacted already)."""
    if isinstance(exc, ResponseTooLarge):
        return _Failure.TOO_LARGE, f"more than {exc.limit} bytes"
    if isinstance(exc, TransportTimeout):
        return _Failure.TIMEOUT, "timed out"
    chain = list(_causes(exc))
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            message = (cause.verify_message or str(cause)).rstrip(".")
            if cause.verify_code in _X509_NAME_MISMATCH or "mismatch" in message.lower():
                return _Failure.HOSTNAME, message
            if cause.verify_code == _X509_EXPIRED:
                return _Failure.EXPIRED, message
            return _Failure.UNTRUSTED, message
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return _Failure.REFUSED, "connection refused"
        if isinstance(cause, socket.gaierror):
            return _Failure.DNS, "the name does not resolve"
    for cause in chain:
        if isinstance(cause, ssl.SSLError):
            reason = str(getattr(cause, "reason", "") or "")
            words = reason.lower().replace("_", " ") or str(cause)
            plain = reason.upper() in _NOT_TLS_REASONS or (isinstance(exc, TransportTLSError) and exc.plain_http)
            return (_Failure.NOT_TLS if plain else _Failure.TLS), words
    for cause in chain:
        if isinstance(cause, (ConnectionResetError, ConnectionAbortedError, http.client.RemoteDisconnected)):
            return _Failure.RESET, "the server closed the connection without an HTTP answer"
        if isinstance(cause, http.client.BadStatusLine):
            return _Failure.RESET, "the server sent something that is not HTTP"
    for cause in chain:
        if isinstance(cause, (socket.timeout, TimeoutError)):
            return _Failure.TIMEOUT, "timed out"
        if isinstance(cause, OSError) and cause.errno is not None:
            return _Failure.UNREACHABLE, cause.strerror or str(cause)
    if isinstance(exc, TransportProtocolError):
        return _Failure.RESET, "the server sent something that is not well-formed HTTP"
    for cause in chain:
        if isinstance(cause, http.client.HTTPException):
            return _Failure.RESET, "the server broke off the exchange"
    return _Failure.OTHER, str(exc)


class _Prober:
    """The attempts against one ``host:port``, each the way one security mode asks."""

    def __init__(
        self,
        *,
        connect_host: str,
        port: int,
        server_hostname: str | None,
        timeout: float,
        ca_bundle: str | None,
        max_response_bytes: int,
    ) -> None:
        self.connect_host = connect_host
        self.port = port
        self.server_hostname = server_hostname
        self.timeout = timeout
        self.ca_bundle = ca_bundle
        self.max_response_bytes = max_response_bytes
        self._cache: dict[SecurityMode, _Attempt] = {}

    def url(self, mode: SecurityMode) -> str:
        return f"{mode.scheme}://{format_host_port(self.connect_host, self.port)}"

    @property
    def tried(self) -> frozenset[SecurityMode]:
        """The modes asked already (each is asked at most once)."""
        return frozenset(self._cache)

    def attempt(self, mode: SecurityMode) -> _Attempt:
        if mode not in self._cache:
            self._cache[mode] = self._attempt(mode)
        return self._cache[mode]

    def _client(self, mode: SecurityMode) -> HttpClient:
        """A client for one mode: pinned to the instance's IP, checking TLS and naming Host as the registry."""
        verify: bool | str = False
        if mode is SecurityMode.HTTPS_VERIFIED:
            verify = self.ca_bundle if self.ca_bundle is not None else True
        if self.server_hostname is None:
            return HttpClient(
                self.url(mode), verify=verify, timeout=self.timeout, max_response_bytes=self.max_response_bytes
            )
        return HttpClient(
            f"{mode.scheme}://{format_host_port(self.server_hostname, self.port)}",
            verify=verify,
            connect_to=self.connect_host,
            timeout=self.timeout,
            max_response_bytes=self.max_response_bytes,
        )

    def _attempt(self, mode: SecurityMode) -> _Attempt:
        headers = {"User-Agent": "registry-config-probe", "Accept": "application/json"}
        with self._client(mode) as client:
            try:
                response = client.request("GET", "/v2/", headers=headers)
            except RedirectRefused as exc:
                # A redirect is an answer (an http port sending clients to https says so), never followed.
                return _Attempt(mode, status=exc.status, location=exc.location)
            except TransportError as exc:
                failure, detail = _classify(exc)
                return _Attempt(mode, failure=failure, detail=detail)
        return _Attempt(
            mode,
            status=response.status,
            api_version=response.headers.get(API_VERSION_HEADER),
            auth_challenge=response.headers.get("WWW-Authenticate"),
            body=response.body[:_BODY_PEEK].decode("utf-8", "replace"),
        )


def _answer_words(attempt: _Attempt) -> str:
    """How a registry answer reads: 'HTTP 200' or 'HTTP 401, asking for authentication (Bearer ...)'."""
    words = f"HTTP {attempt.status}"
    if attempt.status == 401:
        scheme = attempt.auth_challenge.split(" ", 1)[0] if attempt.auth_challenge else ""
        words += f"; it asks for {scheme} authentication" if scheme else "; it asks for authentication"
    return words


def _mode_words(mode: SecurityMode) -> str:
    return {
        SecurityMode.HTTP: "over plain HTTP",
        SecurityMode.HTTPS_VERIFIED: "over HTTPS with a certificate that verifies",
        SecurityMode.HTTPS_UNVERIFIED: "over HTTPS with a certificate that does not verify",
    }[mode]


def _how_to_use(mode: SecurityMode, spec: RegistrySpec, verified: _Attempt | None = None) -> str:
    """What to configure to reach a registry that speaks ``mode`` (``verified``: why verification failed)."""
    address = format_host_port(spec.host, spec.port)
    if mode is SecurityMode.HTTP:
        return f"use http://{address} (an insecure registry: Docker clients need it in insecure-registries)"
    if mode is SecurityMode.HTTPS_VERIFIED:
        return f"use https://{address}"
    remedy = "or trust its CA with ca_bundle"
    if verified is not None and verified.failure is _Failure.HOSTNAME:
        remedy = f"or use a name its certificate lists ({verified.detail})"
    elif verified is not None and verified.failure is _Failure.EXPIRED:
        remedy = "or renew its certificate, which has expired"
    return f"use https://{address} with skip_ssl_validation=True (an insecure registry), {remedy}"


def _failure_words(attempt: _Attempt, *, where: str, timeout: float, name: str) -> str:
    """One sentence on why an attempt got no answer, with what to do."""
    failure = attempt.failure
    if failure is _Failure.REFUSED:
        return f"connection to {where} refused: nothing listens there; check the port and that the registry runs"
    if failure is _Failure.TIMEOUT:
        return (
            f"no complete answer from {where} within {timeout:g}s: a firewall drops the packets, or the server "
            "hangs or answers too slowly; check the host, the port and the egress rules"
        )
    if failure is _Failure.TOO_LARGE:
        return (
            f"{where} answers GET /v2/ with {attempt.detail}, far more than a registry's few bytes: it is not "
            "a Docker registry (v2 API); check the host and the port"
        )
    if failure is _Failure.DNS:
        return f"cannot resolve {name!r}: check the name and the DNS setup (Consul's DNS forwarding for .consul names)"
    if failure is _Failure.UNREACHABLE:
        return f"cannot reach {where} ({attempt.detail}): check routing and firewalls"
    if failure is _Failure.UNTRUSTED:
        return (
            f"the certificate does not verify ({attempt.detail}): self-signed or issued by a CA this host does "
            "not trust? pass skip_ssl_validation=True or trust its CA with ca_bundle"
        )
    if failure is _Failure.HOSTNAME:
        return (
            f"the certificate is not valid for {name!r} ({attempt.detail}): use a name the certificate lists, "
            "reissue the certificate for this name, or pass skip_ssl_validation=True"
        )
    if failure is _Failure.EXPIRED:
        return f"the certificate has expired ({attempt.detail}): renew it, or pass skip_ssl_validation=True meanwhile"
    if failure is _Failure.NOT_TLS:
        return f"the server does not speak TLS ({attempt.detail})"
    if failure is _Failure.TLS:
        return f"the TLS handshake failed ({attempt.detail})"
    if failure is _Failure.RESET:
        return f"{attempt.detail}"
    return f"the request failed ({attempt.detail})"


def _not_registry_words(attempt: _Attempt, *, where: str) -> str:
    over = "over plain HTTP" if attempt.mode is SecurityMode.HTTP else "over HTTPS"
    if attempt.location is not None:
        return (
            f"{where} answers GET /v2/ with HTTP {attempt.status} {over}, a redirect to "
            f"{quote(attempt.location, limit=120)}, which is not followed: a registry answers /v2/ itself; "
            "point the URL at the registry"
        )
    header = (
        f"with {API_VERSION_HEADER}: {quote(attempt.api_version, limit=60)}"
        if attempt.api_version
        else f"without a {API_VERSION_HEADER} header"
    )
    return (
        f"{where} answers GET /v2/ with HTTP {attempt.status} {over} {header}: "
        "it is not a Docker registry (v2 API); check the host and the port"
    )


def _alternatives(configured: _Attempt) -> tuple[SecurityMode, ...]:
    """The other ways worth asking, after the configured way got ``configured``."""
    if configured.failure in _UNREACHABLE:
        return ()
    if configured.mode is SecurityMode.HTTP:
        return (SecurityMode.HTTPS_VERIFIED, SecurityMode.HTTPS_UNVERIFIED)
    if configured.failure in _CERTIFICATE:
        return (SecurityMode.HTTPS_UNVERIFIED,)
    if configured.mode is SecurityMode.HTTPS_VERIFIED:
        return (SecurityMode.HTTP, SecurityMode.HTTPS_UNVERIFIED)
    return (SecurityMode.HTTP,)


def _failure_kind(attempt: _Attempt) -> str | None:
    """What :attr:`ProbeResult.failure` says of the configured way's attempt."""
    if attempt.is_registry:
        return None
    if attempt.failure is not None:
        return attempt.failure.value
    if attempt.wants_tls:
        return "wants-tls"
    return "redirect" if attempt.location is not None else "not-registry"


def _probe_one(prober: _Prober, spec: RegistrySpec, *, target: str, name: str) -> ProbeResult:
    """Ask the configured way, then the others as needed; build the result and its diagnosis."""
    configured_mode = spec.security
    where = format_host_port(prober.connect_host, prober.port)
    first = prober.attempt(configured_mode)

    def result(answer: _Attempt | None, observed: SecurityMode | None, matches: bool, diagnosis: str) -> ProbeResult:
        shown = answer if answer is not None and answer.answered else None
        return ProbeResult(
            reachable=shown is not None,
            status=shown.status if shown else None,
            api_version=shown.api_version if shown else None,
            auth_challenge=shown.auth_challenge if shown else None,
            observed=observed,
            matches=matches,
            diagnosis=diagnosis,
            target=target,
            failure=_failure_kind(first),
        )

    if first.is_registry:
        observed = configured_mode
        sentence = (
            f"{prober.url(configured_mode)} answers as a Docker registry ({_answer_words(first)}) "
            f"{_mode_words(configured_mode)}, as configured"
        )
        if configured_mode is SecurityMode.HTTPS_UNVERIFIED:
            verified = prober.attempt(SecurityMode.HTTPS_VERIFIED)
            if verified.is_registry:
                observed = SecurityMode.HTTPS_VERIFIED
                sentence = (
                    f"{prober.url(configured_mode)} answers as a Docker registry ({_answer_words(first)}) over HTTPS, "
                    "as configured, and its certificate verifies: skip_ssl_validation is not needed; drop it to "
                    "treat the registry as secure"
                )
            elif verified.failure in _CERTIFICATE:
                sentence += f"; the certificate does not verify ({verified.detail}), which is why it is insecure"
        elif configured_mode is SecurityMode.HTTP:
            sentence += "; it is insecure: Docker clients need it in insecure-registries"
        return result(first, observed, True, sentence + ".")

    if first.answered and not first.wants_tls:
        return result(first, None, False, _not_registry_words(first, where=prober.url(first.mode)) + ".")

    if first.wants_tls:
        why = "the server wants TLS" + (
            f" (it answered HTTP {first.status}: {quote(first.body.strip(), limit=80)})"
            if first.status == 400
            else f" (it redirects to {quote(first.location or '', limit=120)}, not followed)"
        )
    elif first.failure is _Failure.NOT_TLS and configured_mode is not SecurityMode.HTTP:
        why = f"the server speaks plain HTTP, not TLS ({first.detail})"
    else:
        why = _failure_words(first, where=where, timeout=prober.timeout, name=name)
    opening = f"{configured_mode.scheme} URL {prober.url(configured_mode)}, but {why}"

    for mode in _alternatives(first):
        if mode is SecurityMode.HTTPS_UNVERIFIED and SecurityMode.HTTPS_VERIFIED in prober.tried:
            verified = prober.attempt(SecurityMode.HTTPS_VERIFIED)
            if verified.failure not in _CERTIFICATE:
                continue  # no TLS there, or it answered already: asking without verification cannot do better
        other = prober.attempt(mode)
        if other.is_registry:
            found = f"it answers as a Docker registry ({_answer_words(other)}) {_mode_words(mode)}"
            if first.failure in _CERTIFICATE and mode is SecurityMode.HTTPS_UNVERIFIED:
                return result(other, mode, False, f"{opening}; without verification {found}.")
            verified_attempt = (
                prober.attempt(SecurityMode.HTTPS_VERIFIED) if mode is SecurityMode.HTTPS_UNVERIFIED else None
            )
            return result(other, mode, False, f"{opening}; {found}: {_how_to_use(mode, spec, verified_attempt)}.")
        if other.answered and not other.wants_tls:
            words = _not_registry_words(other, where=prober.url(mode))
            return result(other, None, False, f"{opening}; {words}.")
    answered = first if first.answered else None
    return result(answered, None, False, opening + ".")


def _instance(item: object, spec: RegistrySpec) -> ServiceInstance:
    if isinstance(item, ServiceInstance):
        return item
    if isinstance(item, str):
        host, port = split_host_port(item, where="probe instance")
        return ServiceInstance(host, port if port is not None else spec.port)
    raise ProbeError(f"probe instance: got a {type(item).__name__}; give a ServiceInstance or an 'ip:port' string")


def _check_ca_bundle(ca_bundle: str | os.PathLike[str] | None) -> str | None:
    if ca_bundle is None:
        return None
    path = os.fspath(ca_bundle)
    if not os.path.isfile(path):
        raise ProbeError(
            f"CA bundle {quote(path, limit=200)} does not exist or is not a file; "
            "give the PEM file of the registry's CA"
        )
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ProbeError(
            f"CA bundle {quote(path, limit=200)} cannot be loaded ({quote(exc, limit=120)}); "
            "give a PEM file holding CA certificates"
        ) from exc
    return path


def _number(value: object) -> str:
    """A bad numeric argument as a message shows it: its repr when a number, else only its type."""
    return repr(value) if isinstance(value, (int, float)) else f"(a {type(value).__name__})"


def probe_registry(
    spec_or_url: RegistrySpec | str,
    *,
    timeout: float = 5.0,
    ca_bundle: str | os.PathLike[str] | None = None,
    instances: Iterable[ServiceInstance | str] | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    credentials: Credentials | None = None,
) -> ProbeResult:
    """Ask ``GET /v2/`` of a registry and report what it really speaks, and what to change if it differs.

    ``spec_or_url`` is a :class:`RegistrySpec` or a URL (parsed with
    :meth:`RegistrySpec.from_url`). ``ca_bundle`` is a PEM file of CAs to
    trust instead of the system's. Each ``instances`` entry (a
    :class:`ServiceInstance` or ``"ip:port"``) is probed as well, connecting
    to its IP but checking TLS against the registry's host name, as a Docker
    client pulling ``host:port/image`` from that instance would; their results
    are in :attr:`ProbeResult.instances`.

    ``timeout`` bounds each whole request (connect, TLS, headers and body);
    a target costs at most three requests, so a probe of ``n`` instances takes
    at most ``3 * (n + 1) * timeout`` seconds. An answer larger than
    ``max_response_bytes`` ends its attempt (``failure == "too-large"``); a
    redirect is never followed (``failure == "redirect"``, or ``"wants-tls"``
    for an http port sending clients to https), and the diagnosis names where
    it pointed, redacted.

    With ``credentials`` (a :class:`~registry_config.Credentials`), a registry
    that asks for a login (401) is logged in to as Docker clients do (Basic, or
    the Bearer token flow): :attr:`ProbeResult.login` says whether it was
    accepted, and the diagnosis says why not. The password is never shown.

    Bad arguments (a missing or unreadable ``ca_bundle``, a timeout that is not
    positive) raise :class:`ProbeError`; a bad URL raises
    :class:`InvalidRegistryURL`. Nothing the network does raises: it is
    described in the result.
    """
    spec = spec_or_url if isinstance(spec_or_url, RegistrySpec) else RegistrySpec.from_url(spec_or_url)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise ProbeError(f"probe timeout {_number(timeout)}: give a positive number of seconds")
    if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int) or max_response_bytes < 1:
        raise ProbeError(f"max_response_bytes {_number(max_response_bytes)}: give a positive number")
    bundle = _check_ca_bundle(ca_bundle)
    members = tuple(_instance(item, spec) for item in (instances or ()))

    prober = _Prober(
        connect_host=spec.host,
        port=spec.port,
        server_hostname=None,
        timeout=timeout,
        ca_bundle=bundle,
        max_response_bytes=max_response_bytes,
    )
    top = _probe_one(prober, spec, target=spec.url, name=spec.host)
    results = []
    for member in members:
        member_prober = _Prober(
            connect_host=str(member.address),
            port=member.port,
            server_hostname=spec.host,
            timeout=timeout,
            ca_bundle=bundle,
            max_response_bytes=max_response_bytes,
        )
        target = f"{member.endpoint} (as {spec.host})"
        results.append(_probe_one(member_prober, spec, target=target, name=spec.host))
    top = attrs.evolve(top, instances=tuple(results))
    if credentials is not None and top.matches and top.status == 401:
        top = _with_login(top, spec, credentials, timeout=timeout, ca_bundle=bundle)
    return top


def _with_login(
    result: ProbeResult, spec: RegistrySpec, credentials: Credentials, *, timeout: float, ca_bundle: str | None
) -> ProbeResult:
    """``result`` with what the registry made of ``credentials`` (the login flow resolve_image uses)."""
    from .images.resolve import check_login  # images builds on the probe's neighbours; imported when used

    try:
        check_login(spec, credentials, timeout=timeout, ca_bundle=ca_bundle)
    except RegistryAuthError as exc:
        return attrs.evolve(result, login="refused", diagnosis=f"{result.diagnosis} The login was refused: {exc}")
    except ProbeError as exc:
        return attrs.evolve(
            result, login="refused", diagnosis=f"{result.diagnosis} The login could not be checked: {exc}"
        )
    return attrs.evolve(
        result,
        login="accepted",
        diagnosis=f"{result.diagnosis} The login of {quote(credentials.username, limit=60)} is accepted.",
    )
