"""One registry instance, asked for manifests the way Docker clients ask: the distribution API and its logins.

:class:`DistributionClient` speaks to one ``base_url`` (one instance) through
the bounded transport (:mod:`registry_config.http`): every request has a
whole-request deadline and a size ceiling, and no redirect is followed, so a
login never travels to a host it was not meant for. A ``401`` is answered as
Docker answers it: the ``WWW-Authenticate`` challenge says ``Basic`` (send
the credentials to the registry itself) or ``Bearer`` (ask the challenge's
``realm`` for a token for its ``service`` and ``scope``, with the
credentials when there are some, anonymously otherwise, then send the
token). Credentials go to the registry (in the flavour the user chose, plain
HTTP included) and to its token realm, never elsewhere; and never to a
plain-HTTP realm of an HTTPS registry, which would send in clear text what
the registry's TLS protects.

Every answer the API documents becomes a typed error: 404 (which of
repository, tag or digest is unknown, from distribution's error codes), 401
and 403 (:class:`~registry_config.errors.RegistryAuthError`), 429 (when to
retry, from ``Retry-After``), anything else and every transport failure
(:class:`~registry_config.errors.ProbeError`).
"""

from __future__ import annotations

import email.utils
import json
import logging
import urllib.parse
from collections.abc import MutableMapping, Sequence

import attrs

from ..address import format_host_port
from ..credentials import Credentials
from ..errors import ImageNotFoundError, ProbeError, RegistryAuthError
from ..http import HttpClient, HttpResponse, TransportError, TransportTLSError
from ..redact import quote
from .challenge import Challenge, parse_challenges
from .manifest import ACCEPT, compute_digest, is_digest, media_type_of

__all__ = ["DistributionClient", "ManifestAnswer", "TokenCache"]

log = logging.getLogger("registry_config.images")

TokenCache = MutableMapping[tuple[str, str, str], str]
"""Tokens already obtained, by (realm, service, scope): instances of one registry share a token service."""

_ERROR_BODY_LIMIT = 160
_USER_AGENT = "registry-config"


@attrs.frozen
class ManifestAnswer:
    """What one instance answered for a manifest: its digest, media type, and body when it was fetched."""

    digest: str
    media_type: str
    body: bytes | None = attrs.field(default=None, repr=False)


def _retry_after(value: str | None, secrets: Sequence[str] = ()) -> str:
    """The words for when to retry: from delta-seconds or an HTTP date, or 'later'."""
    if not value:
        return "retry later (the registry gave no Retry-After)"
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) < 10:
        return f"retry after {int(text)} seconds (Retry-After)"
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        when = None
    if when is not None:
        return f"retry after {when.isoformat()} (Retry-After)"
    return f"retry later (Retry-After: {quote(text, secrets=secrets, limit=40)})"


_GENERIC_TYPES = frozenset({"application/octet-stream", "application/json", "text/plain"})


def _error_codes(body: bytes) -> list[tuple[str, str]]:
    """distribution's ``{"errors": [{"code": ..., "message": ...}]}``, as (code, message) pairs."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return []
    found = []
    for item in errors:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            message = item.get("message")
            found.append((item["code"], message if isinstance(message, str) else ""))
    return found


class DistributionClient:
    """Manifests of one registry instance, with the login flow of Docker clients.

    ``where`` names the instance in messages (``10.0.0.5:5000``);
    ``registry_scheme`` and ``registry_address`` are the registry's own (the
    URL the user gave), which decide where credentials may go. ``tokens``
    is shared between the clients of one registry's instances.
    """

    def __init__(
        self,
        base_url: str,
        *,
        where: str,
        verify: bool | str,
        connect_to: str | None = None,
        credentials: Credentials | None = None,
        timeout: float,
        ca_bundle: str | None = None,
        registry_scheme: str,
        registry_address: str,
        tokens: TokenCache | None = None,
    ) -> None:
        self.where = where
        self._credentials = credentials
        self._timeout = timeout
        self._ca_bundle = ca_bundle
        self._verify = verify
        self._registry_scheme = registry_scheme
        self._registry_address = registry_address
        self._tokens: TokenCache = tokens if tokens is not None else {}
        self._authorization: str | None = None
        self._secrets: list[str] = [credentials.password] if credentials is not None else []
        self._http = HttpClient(
            base_url, verify=verify, connect_to=connect_to, timeout=timeout, secrets=tuple(self._secrets)
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DistributionClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- messages -----------------------------------------------------------------------------------------------

    def _quote(self, text: str, limit: int = _ERROR_BODY_LIMIT) -> str:
        return quote(text, secrets=self._secrets, limit=limit)

    def _transport_error(self, exc: TransportError, what: str) -> ProbeError:
        advice = ""
        if isinstance(exc, TransportTLSError):
            if getattr(exc, "plain_http", False):
                advice = "; it speaks plain HTTP: use an http:// URL"
            elif getattr(exc, "verify_failed", False):
                advice = (
                    "; its certificate does not verify: pass its CA (ca_bundle / --ca-bundle), or use "
                    "skip_ssl_validation for a self-signed registry"
                )
        text = quote(str(exc), secrets=self._secrets, limit=300)
        return ProbeError(f"{what} {self.where} failed: {text}{advice}")

    # -- requests -----------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str) -> HttpResponse:
        headers = {"Accept": ACCEPT, "User-Agent": _USER_AGENT}
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        try:
            return self._http.request(method, path, headers=headers)
        except TransportError as exc:
            raise self._transport_error(exc, f"{method} {path} on") from exc

    def _request(self, method: str, path: str, repository: str | None) -> HttpResponse:
        response = self._send(method, path)
        if response.status == 401 and self._login(response, repository):
            response = self._send(method, path)
            if response.status == 401:
                raise self._refused(response, repository)
        elif response.status == 401:
            raise self._refused(response, repository)
        return response

    def _refused(self, response: HttpResponse, repository: str | None) -> RegistryAuthError:
        detail = self._detail(response)
        what = f" to read {repository!r}" if repository else ""
        if self._credentials is None:
            return RegistryAuthError(
                f"{self.where} wants a login{what}{detail}; give credentials "
                "(credentials=Credentials(...), or --credentials-file)"
            )
        access = " and the user's access to the repository" if repository else ""
        return RegistryAuthError(
            f"{self.where} refused the credentials of user {self._credentials.username!r}"
            f"{' for ' + repr(repository) if repository else ''}{detail}; check the user, the password{access}"
        )

    def _detail(self, response: HttpResponse) -> str:
        codes = _error_codes(response.body)
        if codes:
            code, message = codes[0]
            return f" ({self._quote(code, 40)}: {self._quote(message, 120)})"
        return ""

    # -- login ----------------------------------------------------------------------------------------------

    def _login(self, response: HttpResponse, repository: str | None) -> bool:
        """Answer a 401's challenge; ``False`` when it was answered already (the registry refused it)."""
        if self._authorization is not None:
            return False
        challenges = parse_challenges(response.headers.get_all("WWW-Authenticate") or ())
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None:
            token = self._token(bearer, repository)
            self._secrets.append(token)
            self._authorization = f"Bearer {token}"
            return True
        if basic is not None:
            if self._credentials is None:
                what = f" to read {repository!r}" if repository else ""
                raise RegistryAuthError(
                    f"{self.where} asks for a Basic login{what} and no credentials were given; "
                    "give credentials (credentials=Credentials(...), or --credentials-file)"
                )
            self._authorization = f"Basic {self._credentials.basic}"
            return True
        shown = ", ".join(sorted({c.scheme for c in challenges})) or "none"
        raise RegistryAuthError(
            f"{self.where} answered 401 with no Basic or Bearer challenge (challenges: {self._quote(shown, 60)}); "
            "this client cannot log in there"
        )

    def _realm(self, challenge: Challenge) -> urllib.parse.SplitResult:
        realm = challenge.get("realm") or ""
        try:
            parts = urllib.parse.urlsplit(realm)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryAuthError(
                f"{self.where} sent a Bearer challenge whose realm {self._quote(realm, 120)} is not an http(s) URL"
            )
        if parts.username is not None or parts.password is not None:
            raise RegistryAuthError(f"{self.where} sent a Bearer realm with user-info; refusing to use it")
        del port  # read only to refuse a bad port (urlsplit raises on it)
        return parts

    def _realm_verify(self, realm: urllib.parse.SplitResult) -> bool | str:
        """Check the realm's certificate as a Docker client would: unverified only where the registry is."""
        default = 443 if realm.scheme == "https" else 80
        realm_address = format_host_port(realm.hostname or "", realm.port or default)
        if self._verify is False and realm_address == self._registry_address:
            return False
        return self._ca_bundle if self._ca_bundle is not None else True

    def _token(self, challenge: Challenge, repository: str | None) -> str:
        realm = self._realm(challenge)
        service = challenge.get("service") or ""
        scope = challenge.get("scope") or (f"repository:{repository}:pull" if repository else "")
        key = (realm.geturl(), service, scope)
        cached = self._tokens.get(key)
        if cached is not None:
            return cached
        credentials = self._credentials
        if credentials is not None and realm.scheme == "http" and self._registry_scheme == "https":
            raise RegistryAuthError(
                f"{self.where} (HTTPS) sends logins to a plain-HTTP token realm "
                f"{self._quote(realm.geturl(), 120)}; refusing to send the password in clear text: "
                "fix the registry's auth.token.realm"
            )
        params: list[tuple[str, str]] = urllib.parse.parse_qsl(realm.query, keep_blank_values=True)
        if service:
            params.append(("service", service))
        params.extend(("scope", part) for part in scope.split(" ") if part)
        headers = {"User-Agent": _USER_AGENT}
        if credentials is not None:
            params.append(("account", credentials.username))
            headers["Authorization"] = f"Basic {credentials.basic}"
        base = f"{realm.scheme}://{realm.netloc}"
        realm_words = f"token realm {self._quote(base + realm.path, 120)} of {self.where}"
        try:
            client = HttpClient(
                base, verify=self._realm_verify(realm), timeout=self._timeout, secrets=tuple(self._secrets)
            )
        except ValueError as exc:  # a host or port the transport cannot use: the registry's answer is at fault
            raise RegistryAuthError(
                f"{self.where} sent a Bearer realm {self._quote(realm.geturl(), 120)} that cannot be asked "
                f"({self._quote(str(exc), 120)})"
            ) from None
        try:
            response = client.request("GET", realm.path or "/", params=params, headers=headers)
        except TransportError as exc:
            raise self._transport_error(exc, f"asking the {realm_words} for a token: GET on") from exc
        finally:
            client.close()
        if response.status in (401, 403):
            if credentials is None:
                raise RegistryAuthError(
                    f"the {realm_words} refused an anonymous token (HTTP {response.status}); give credentials "
                    "(credentials=Credentials(...), or --credentials-file)"
                )
            raise RegistryAuthError(
                f"the {realm_words} refused the credentials of user {credentials.username!r} "
                f"(HTTP {response.status}); check the user and the password"
            )
        if response.status != 200:
            raise ProbeError(
                f"the {realm_words} answered HTTP {response.status} {self._quote(response.reason, 60)}; "
                "check the token service"
            )
        token = self._token_from(response.body)
        if token is None:
            raise ProbeError(f"the {realm_words} answered 200 without a token (no 'token' or 'access_token')")
        log.debug("got a token from %s for scope %s", realm_words, scope)
        self._tokens[key] = token
        return token

    @staticmethod
    def _token_from(body: bytes) -> str | None:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(document, dict):
            return None
        for name in ("token", "access_token"):
            value = document.get(name)
            if isinstance(value, str) and value and value.isprintable() and value.isascii():
                return value
        return None

    # -- manifests ------------------------------------------------------------------------------------------

    def _tags(self, repository: str) -> list[str] | None:
        """The repository's tags (``GET /v2/<name>/tags/list``), or ``None`` when it does not exist.

        distribution answers ``MANIFEST_UNKNOWN`` for a manifest of a
        repository it has never seen; only the tag list says ``NAME_UNKNOWN``.
        """
        path = f"/v2/{repository}/tags/list"
        response = self._request("GET", path, repository)
        if response.status == 404:
            return None
        if response.status != 200:
            return []
        try:
            document = json.loads(response.body)
        except (ValueError, RecursionError):
            return []
        tags = document.get("tags") if isinstance(document, dict) else None
        return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []

    def _not_found(self, path: str, repository: str, reference: str, body: bytes) -> ImageNotFoundError:
        codes = [code for code, _ in _error_codes(body)]
        what = "digest" if is_digest(reference) else "tag"
        tags: list[str] | None = []
        if "NAME_UNKNOWN" in codes:
            tags = None
        elif "MANIFEST_UNKNOWN" in codes or not codes:
            tags = self._tags(repository)
        if tags is None:
            return ImageNotFoundError(
                f"{self.where} does not know the repository {repository!r} (NAME_UNKNOWN); check the image name "
                "or push it first"
            )
        known = ""
        if tags:
            shown = ", ".join(self._quote(tag, 60) for tag in sorted(tags)[:10])
            known = f" (its tags: {shown}{', ...' if len(tags) > 10 else ''})"
        return ImageNotFoundError(
            f"{self.where} has the repository {repository!r} but not the {what} {reference!r}{known}; "
            f"check the {what} or push it"
        )

    def _check(self, response: HttpResponse, path: str, repository: str, reference: str) -> None:
        status = response.status
        if status == 200:
            return
        if status == 404:
            raise self._not_found(path, repository, reference, response.body)
        if status == 403:
            raise RegistryAuthError(
                f"{self.where} denied access to {repository!r} (HTTP 403){self._detail(response)}; "
                "the user lacks pull access to the repository"
            )
        if status == 429:
            raise ProbeError(
                f"{self.where} is rate-limiting requests (HTTP 429 Too Many Requests); "
                f"{_retry_after(response.headers.get('Retry-After'), self._secrets)}"
            )
        if status in (301, 302, 303, 307, 308):  # pragma: no cover - the transport refuses redirects first
            raise ProbeError(f"{self.where} redirects {path}; registries answer manifests directly")
        raise ProbeError(
            f"{self.where} answered HTTP {status} {self._quote(response.reason, 60)} for {path}"
            f"{self._detail(response)}; is it a Docker registry (v2 API)?"
        )

    def check_login(self) -> None:
        """``GET /v2/`` with the login flow: return when the registry lets this client in, raise otherwise.

        A registry without authentication lets everybody in; one with it
        answers 401 until the login (Basic, or a token got with it) is
        accepted. Raises :class:`~registry_config.errors.RegistryAuthError`
        (missing or refused) or :class:`~registry_config.errors.ProbeError`.
        """
        response = self._request("GET", "/v2/", None)
        if response.status != 200:
            raise ProbeError(
                f"{self.where} answered GET /v2/ with HTTP {response.status} {self._quote(response.reason, 60)}"
                f"{self._detail(response)}; is it a Docker registry (v2 API)?"
            )

    def manifest(self, repository: str, reference: str, *, want_body: bool = False) -> ManifestAnswer:
        """The digest and media type of ``repository``'s manifest ``reference`` (a tag or a digest).

        ``HEAD`` first, as clients do; a ``GET`` when the body is wanted, when
        the ``Docker-Content-Digest`` header is missing or malformed (the
        digest is then computed over the exact bytes), and for the error code
        of a 404 (a ``HEAD`` answer has no body). A digest reference is
        checked against what the registry served.
        """
        path = f"/v2/{repository}/manifests/{reference}"
        if not want_body:
            head = self._request("HEAD", path, repository)
            # A 404's error code (which of repository and tag is unknown) is in a GET's body only.
            if head.status != 404:
                self._check(head, path, repository, reference)
                header = (head.headers.get("Docker-Content-Digest") or "").strip()
                if is_digest(header):
                    if is_digest(reference) and header != reference:
                        raise ProbeError(
                            f"{self.where} answered {path} with the digest {self._quote(header, 80)}; a registry "
                            "must serve a digest reference with that digest"
                        )
                    media_type = media_type_of(head.headers.get("Content-Type"))
                    if media_type not in _GENERIC_TYPES:
                        return ManifestAnswer(header, media_type)
                    log.debug("%s: HEAD %s names no manifest type; reading it with GET", self.where, path)
                else:
                    log.debug("%s: no usable Docker-Content-Digest for %s; hashing the body", self.where, path)
        get = self._request("GET", path, repository)
        self._check(get, path, repository, reference)
        return self._from_body(get, path, reference)

    def _from_body(self, response: HttpResponse, path: str, reference: str) -> ManifestAnswer:
        body = response.body
        by_digest = is_digest(reference)
        algorithm = reference.split(":", 1)[0] if by_digest else "sha256"
        digest = compute_digest(body, algorithm)
        if by_digest and digest != reference:
            raise ProbeError(
                f"{self.where} served content for {path} whose {algorithm} is {digest}, not the digest asked for; "
                "the registry's storage is corrupt or something between rewrites its answers"
            )
        served = (response.headers.get("Docker-Content-Digest") or "").strip()
        if is_digest(served) and served.split(":", 1)[0] == algorithm and served != digest:
            raise ProbeError(
                f"{self.where} served {path} with Docker-Content-Digest {served} but its bytes hash to {digest}; "
                "something between the registry and this client rewrites its answers"
            )
        return ManifestAnswer(digest, media_type_of(response.headers.get("Content-Type"), body), body)
