"""Registries with logins and images, for the resolve tests: htpasswd (Basic), token auth with a small issuer.

Debian's docker-registry (distribution 2.8) runs on a free loopback port
(:func:`_registry.run_registry`, its configuration from
:func:`_registry.config_text`): ``auth: htpasswd`` with a bcrypt file made by
apache2-utils' ``htpasswd -B``, or ``auth: token`` whose tokens come from
:class:`TokenIssuer`, a loopback HTTP server of the test's own that checks a
Basic login and signs ES256 JWTs with a key whose self-signed certificate is
the registry's ``rootcertbundle`` (the registry verifies the ``x5c`` chain
against it). Images are pushed over the registry API by hand
(:func:`push_image`, :func:`push_index`): small OCI manifests whose bytes the
tests know, so the digest a resolve returns can be checked against the
sha256 of exactly what was pushed.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import gzip
import hashlib
import http.server
import io
import json
import subprocess
import tarfile
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
import urllib3
from _integration import need_program
from _registry import REGISTRY_NAME, TOKEN_ISSUER, RunningRegistry, run_registry

__all__ = [
    "PASSWORD",
    "USER",
    "Deployed",
    "Pushed",
    "Pusher",
    "TokenIssuer",
    "htpasswd_registry",
    "push_image",
    "push_index",
    "replica_pair",
    "serve_token_issuer",
    "token_issuer",
    "token_registry",
    "write_htpasswd",
]

USER = "alice"
PASSWORD = "s3cret:with-colon"  # a ':' in a password is allowed (the first ':' separates the user)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def write_htpasswd(path: Path, user: str = USER, password: str = PASSWORD) -> Path:
    """A bcrypt htpasswd file (the only hash distribution accepts), made by apache2-utils' htpasswd."""
    program = need_program("htpasswd", package="apache2-utils")
    # -i reads the password from stdin: it never appears in a process list.
    done = subprocess.run(
        [program, "-B", "-i", "-n", user], input=password.encode(), capture_output=True, check=True, timeout=60
    )
    path.write_bytes(done.stdout)
    return path


# -- the token issuer -----------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@attrs.define
class TokenIssuer:
    """A token service: Basic login checked, ES256 JWTs signed with a key the registry trusts.

    ``USER``/``PASSWORD`` get the actions they ask for (pull, push);
    anonymous callers get pull on ``public/*`` repositories only; a wrong
    password is answered 401. ``requests`` records (path, query, the
    Authorization header) of every request, so a test can see what was sent.
    """

    directory: Path
    port: int = 0
    scheme: str = "http"
    requests_seen: list[tuple[str, dict[str, list[str]], str | None]] = attrs.field(factory=list)
    _key: Any = None
    _cert_der: bytes = b""

    def make_key(self) -> Path:
        """The signing key and its self-signed certificate (the registry's ``rootcertbundle``)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry-config test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._cert_der = certificate.public_bytes(serialization.Encoding.DER)
        bundle = self.directory / "token-signer.pem"
        bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return bundle

    @property
    def realm(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/token"

    def mint(self, access: Sequence[tuple[str, Sequence[str]]], subject: str = USER) -> str:
        """A token granting ``access`` ((repository, actions) pairs), as the registry expects one."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self._cert_der).decode("ascii")]}
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": REGISTRY_NAME,
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now,
            "jti": hashlib.sha256(f"{now}{time.monotonic_ns()}".encode()).hexdigest()[:16],
            "access": [{"type": "repository", "name": name, "actions": list(actions)} for name, actions in access],
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def grant(self, query: dict[str, list[str]], authorization: str | None) -> tuple[int, dict[str, Any]]:
        """What the issuer answers to one request: (status, JSON body)."""
        user: str | None = None
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return 401, {"details": "bad Authorization"}
            name, _, password = decoded.partition(":")
            if scheme.lower() != "basic" or (name, password) != (USER, PASSWORD):
                return 401, {"details": "wrong user or password"}
            user = name
        access: list[tuple[str, list[str]]] = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            repository, _, actions = rest.rpartition(":")
            if kind != "repository":
                continue
            wanted = [action for action in actions.split(",") if action in ("pull", "push")]
            if user is None:
                wanted = [action for action in wanted if action == "pull" and repository.startswith("public/")]
            access.append((repository, wanted))
        token = self.mint(access, subject=user or "anonymous")
        return 200, {"token": token, "access_token": token, "expires_in": 600}


def _issuer_handler(issuer: TokenIssuer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query)
            authorization = self.headers.get("Authorization")
            issuer.requests_seen.append((parts.path, query, authorization))
            status, document = issuer.grant(query, authorization) if parts.path == "/token" else (404, {})
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def token_issuer(directory: Path, *, tls: tuple[Path, Path] | None = None) -> Iterator[TokenIssuer]:
    """A running :class:`TokenIssuer` on a loopback port (HTTPS when ``tls`` holds a certificate and key)."""
    import ssl

    directory.mkdir(parents=True, exist_ok=True)
    issuer = TokenIssuer(directory, scheme="https" if tls else "http")
    issuer.make_key()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _issuer_handler(issuer))
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    issuer.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def serve_token_issuer(directory: str, host: str, port: int) -> None:
    """Run a :class:`TokenIssuer` on ``host:port`` until stopped, in a process of its own.

    For a registry in another network namespace (the dockerd tests): the test
    starts ``python -c`` with this inside the namespace and stops it by its
    PID. The signing certificate (the registry's ``rootcertbundle``) is
    written to ``directory/token-signer.pem`` before the port is opened, so a
    test that waits for the port may then start the registry.
    """
    issuer = TokenIssuer(Path(directory))
    issuer.make_key()
    server = http.server.ThreadingHTTPServer((host, port), _issuer_handler(issuer))
    server.serve_forever()


# -- pushing images by hand ----------------------------------------------------------------------------------


@attrs.frozen
class Pushed:
    """What was pushed: the manifest's (or index's) digest and bytes, and, for an index, its children."""

    digest: str
    body: bytes
    media_type: str
    children: tuple[tuple[str, str], ...] = ()  # (platform, digest)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@attrs.define
class Pusher:
    """Pushes blobs and manifests to one registry over its API, with a login when it wants one."""

    base_url: str
    verify: bool | str = False
    auth: tuple[str, str] | None = None
    token: str | None = None

    @contextlib.contextmanager
    def _session(self) -> Iterator[requests.Session]:
        """A session for one push step; the unverified pushes (self-signed flavour) do not warn."""
        with warnings.catch_warnings(), requests.Session() as session:
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            yield self._setup(session)

    def _setup(self, session: requests.Session) -> requests.Session:
        session.trust_env = False  # no proxy, no REQUESTS_CA_BUNDLE: the test says how to verify
        session.verify = self.verify
        if self.auth is not None:
            session.auth = self.auth
        if self.token is not None:
            session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def blob(self, repository: str, data: bytes) -> str:
        digest = _digest(data)
        with self._session() as session:
            started = session.post(f"{self.base_url}/v2/{repository}/blobs/uploads/", timeout=30)
            assert started.status_code == 202, (started.status_code, started.text)
            location = urllib.parse.urljoin(self.base_url, started.headers["Location"])
            separator = "&" if "?" in location else "?"
            done = session.put(
                f"{location}{separator}digest={digest}",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=30,
            )
            assert done.status_code == 201, (done.status_code, done.text)
        return digest

    def manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        with self._session() as session:
            answer = session.put(
                f"{self.base_url}/v2/{repository}/manifests/{reference}",
                data=body,
                headers={"Content-Type": media_type},
                timeout=30,
            )
            assert answer.status_code == 201, (answer.status_code, answer.text)
            assert answer.headers["Docker-Content-Digest"] == _digest(body)
        return _digest(body)


def _layer(marker: str) -> bytes:
    """A gzipped tar holding one small file: a real layer, different for each marker."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        content = f"registry-config test layer: {marker}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def _manifest(pusher: Pusher, repository: str, marker: str, os_name: str, architecture: str) -> bytes:
    layer = _layer(marker)
    diff_id = _digest(gzip.decompress(layer))
    config = json.dumps(
        {
            "architecture": architecture,
            "os": os_name,
            "config": {"Cmd": ["/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    config_digest = pusher.blob(repository, config)
    layer_digest = pusher.blob(repository, layer)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
        },
        indent=3,  # not json.dumps' default: a client that re-serializes would get another digest
    ).encode()


def push_image(pusher: Pusher, repository: str, tag: str, *, marker: str = "one") -> Pushed:
    """A single-platform OCI image (linux/amd64) under ``tag``."""
    body = _manifest(pusher, repository, marker, "linux", "amd64")
    digest = pusher.manifest(repository, tag, body, OCI_MANIFEST)
    return Pushed(digest, body, OCI_MANIFEST)


def push_index(
    pusher: Pusher,
    repository: str,
    tag: str,
    *,
    marker: str = "multi",
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
) -> Pushed:
    """An OCI index of one manifest per platform under ``tag`` (the children pushed by digest first)."""
    children = []
    descriptors = []
    for platform in platforms:
        os_name, architecture = platform.split("/")[:2]
        body = _manifest(pusher, repository, f"{marker}-{platform}", os_name, architecture)
        digest = pusher.manifest(repository, _digest(body), body, OCI_MANIFEST)
        children.append((platform, digest))
        descriptors.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "platform": {"os": os_name, "architecture": architecture},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}, indent=1).encode()
    digest = pusher.manifest(repository, tag, index, OCI_INDEX)
    return Pushed(digest, index, OCI_INDEX, tuple(children))


# -- module-scoped registries (import them into the test module that needs them) ---------------------------


@attrs.frozen
class Deployed:
    """A running registry, how to reach it, and what the test pushed to it (by name)."""

    registry: RunningRegistry
    url: str
    images: dict[str, Pushed] = attrs.field(factory=dict, eq=False)
    issuer: TokenIssuer | None = None


@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """Plain HTTP with htpasswd (Basic) auth; ``team/app:1.0`` (an index) pushed as ``USER``."""
    tmp = tmp_path_factory.mktemp("registry-htpasswd")
    htpasswd = write_htpasswd(tmp / "htpasswd")
    with run_registry(tmp / "registry", flavour="htpasswd", htpasswd=htpasswd) as registry:
        url = f"http://127.0.0.1:{registry.port}"
        pusher = Pusher(url, auth=(USER, PASSWORD))
        deployed = Deployed(registry, url)
        deployed.images["team/app:1.0"] = push_index(pusher, "team/app", "1.0")
        yield deployed


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """Plain HTTP with token auth from a :class:`TokenIssuer`; ``team/app:1.0`` and ``public/app:1.0`` pushed."""
    tmp = tmp_path_factory.mktemp("registry-token")
    with token_issuer(tmp / "issuer") as issuer:
        bundle = tmp / "issuer" / "token-signer.pem"
        with run_registry(tmp / "registry", flavour="token", token=(issuer.realm, bundle)) as registry:
            url = f"http://127.0.0.1:{registry.port}"
            pusher = Pusher(url, token=issuer.mint([("team/app", ["pull", "push"]), ("public/app", ["pull", "push"])]))
            deployed = Deployed(registry, url, issuer=issuer)
            deployed.images["team/app:1.0"] = push_image(pusher, "team/app", "1.0", marker="token-private")
            deployed.images["public/app:1.0"] = push_image(pusher, "public/app", "1.0", marker="token-public")
            yield deployed


@pytest.fixture(scope="module")
def replica_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployed, Deployed]]:
    """Two instances of one registry (plain HTTP), in sync for ``team/app:1.0`` and not for the rest.

    ``2.0`` points to different content on each; ``3.0`` is on the first only.
    """
    tmp = tmp_path_factory.mktemp("registry-replicas")
    with (
        run_registry(tmp / "first", flavour="http") as first,
        run_registry(tmp / "second", flavour="http") as second,
    ):
        pair = []
        for registry, name in ((first, "first"), (second, "second")):
            url = f"http://127.0.0.1:{registry.port}"
            pusher = Pusher(url)
            deployed = Deployed(registry, url)
            deployed.images["team/app:1.0"] = push_index(pusher, "team/app", "1.0", marker="same")
            deployed.images["team/app:2.0"] = push_image(pusher, "team/app", "2.0", marker=f"drift-{name}")
            if name == "first":
                deployed.images["team/app:3.0"] = push_image(pusher, "team/app", "3.0", marker="only-first")
            pair.append(deployed)
        yield pair[0], pair[1]
