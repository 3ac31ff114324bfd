"""The registry's login as the container runtimes read it: the ``auths`` of ``config.json`` and ``auth.json``.

Docker's ``~/.docker/config.json`` and the containers tools' ``auth.json``
(skopeo, podman, buildah: ``--authfile``, ``REGISTRY_AUTH_FILE``) share one
shape: ``{"auths": {"<registry>": {"auth": "<base64 user:password>"}}}``.
A runtime looks its registry up by the name the image reference writes,
*exactly*: ``registry.example/app`` is looked up as ``registry.example``,
``registry.example:443/app`` as ``registry.example:443``, and an instance
pulled as ``10.0.0.5:5000/app`` as ``10.0.0.5:5000``. So
:func:`render_auth_json` writes one entry per name a pull may use: the
registry's ``host:port``, its bare ``host`` too when the port is the scheme's
default (443 for https, 80 for http: ``../shared/RUNTIMES.md``), and every
instance of a plan as ``ip:port``.

An operator's file holds other registries' logins and settings
(``credsStore``, ``credHelpers``, ``HttpHeaders``): they are kept, in their
order; only the entries named here are replaced, each whole (an old
``identitytoken`` for the same name would otherwise win over the new
``auth``). The command line writes the result with
:func:`registry_config.files.write_atomically` and ``private=True``: mode
0600, since the file holds a password.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from .address import format_host
from .credentials import Credentials
from .errors import InvalidInput
from .files import write_atomically
from .spec import RegistrySpec

__all__ = ["auth_names", "render_auth_json", "write_auth_json"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class _InstanceLike(Protocol):
    @property
    def endpoint(self) -> str: ...


class _PlanLike(Protocol):
    @property
    def spec(self) -> RegistrySpec: ...

    @property
    def instances(self) -> tuple[_InstanceLike, ...]: ...


AuthSource: TypeAlias = "_PlanLike | RegistrySpec | str"


def _spec_and_instances(source: object) -> tuple[RegistrySpec, tuple[str, ...]]:
    if isinstance(source, str):
        return RegistrySpec.from_url(source), ()
    if isinstance(source, RegistrySpec):
        return source, ()
    spec = getattr(source, "spec", None)
    instances = getattr(source, "instances", None)
    if isinstance(spec, RegistrySpec) and instances is not None:
        return spec, tuple(str(instance.endpoint) for instance in instances)
    raise InvalidInput(
        f"cannot render auth.json from a {type(source).__name__}: give a plan (from build_plan), "
        "a RegistrySpec or a registry URL"
    )


def auth_names(source: AuthSource) -> tuple[str, ...]:
    """Every registry name a runtime may look the login up by, in a deterministic order.

    The registry's ``host:port``; its bare host when the port is the scheme's
    default; then each instance of a plan (``ip:port``, ``[v6]:port``).
    """
    spec, instances = _spec_and_instances(source)
    names = [spec.address]
    if spec.port == _DEFAULT_PORTS[spec.scheme]:
        names.append(format_host(spec.host))
    names.extend(instances)
    return tuple(dict.fromkeys(names))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _existing(existing: str | bytes | Mapping[str, Any] | None) -> dict[str, Any]:
    """The operator's file as a dict, or a clear :class:`InvalidInput` saying why it cannot be merged into."""
    if existing is None:
        return {}
    if isinstance(existing, Mapping):
        return dict(existing)
    if isinstance(existing, (bytes, bytearray)):
        try:
            existing = bytes(existing).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"existing auth.json is not UTF-8 text (byte {exc.start}); fix the file first") from None
    if not isinstance(existing, str):
        raise InvalidInput(f"existing auth.json must be text or a mapping, got {type(existing).__name__}")
    if not existing.strip():
        return {}
    try:
        loaded = json.loads(existing, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"existing auth.json is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix the file"
        ) from None
    except (ValueError, RecursionError) as exc:
        # A number of thousands of digits, NaN/Infinity, or nesting deeper than the parser goes.
        reason = "it nests too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise InvalidInput(f"existing auth.json cannot be read ({reason}); fix the file") from None
    if not isinstance(loaded, dict):
        raise InvalidInput(
            f"existing auth.json holds a JSON {type(loaded).__name__}, not an object; runtimes would refuse it"
        )
    return loaded


def _finite(value: object) -> bool:
    """No NaN or infinity anywhere: ``json.dumps`` would write them, and no runtime reads them back."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(_finite(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(item) for item in value)
    return True


def render_auth_json(
    source: AuthSource,
    credentials: Credentials,
    *,
    existing: str | bytes | Mapping[str, Any] | None = None,
) -> str:
    """The ``config.json``/``auth.json`` text with ``credentials`` under every name in :func:`auth_names`.

    ``source`` is a plan (its registry and its instances), a
    :class:`~registry_config.spec.RegistrySpec` or a registry URL.
    ``existing`` (the file's text, bytes or parsed object) is merged into:
    every other key and every other ``auths`` entry is kept, in its order.
    Non-ASCII text is written as ``\\u`` escapes, so the result always
    encodes (even a lone surrogate an old file held). Raises
    :class:`~registry_config.errors.InvalidInput` when ``existing`` is not
    a JSON object whose ``auths`` is an object.
    """
    if not isinstance(credentials, Credentials):
        raise InvalidInput(f"credentials must be a Credentials, got {type(credentials).__name__}")
    names = auth_names(source)
    data = _existing(existing)
    auths = data.get("auths", {})
    if not isinstance(auths, Mapping):
        raise InvalidInput(
            f"existing auth.json: 'auths' is a JSON {type(auths).__name__}, not an object of registry names"
        )
    merged = dict(auths)
    for name in names:
        merged[name] = {"auth": credentials.basic}
    data["auths"] = merged
    try:
        finite = _finite(data)
    except RecursionError:
        raise InvalidInput("existing auth.json nests too deeply to be written back; fix the file") from None
    if not finite:
        raise InvalidInput("existing auth.json holds NaN or Infinity, which is not JSON; fix the file")
    try:
        return json.dumps(data, indent=2, ensure_ascii=True, allow_nan=False) + "\n"
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"existing auth.json cannot be written back ({str(exc)[:120]})") from None


def write_auth_json(path: str | os.PathLike[str], source: AuthSource, credentials: Credentials) -> Path:
    """Merge ``credentials`` into the auth file at ``path`` (created if missing); return the path written.

    The file is replaced atomically and is never left wider than mode 0600
    (a new one is 0600): it holds a password. A file that cannot be read or
    merged into raises :class:`~registry_config.errors.InvalidInput` and is
    left untouched.
    """
    where = os.fspath(path)
    try:
        existing: bytes | None = Path(where).read_bytes()
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise InvalidInput(f"auth file {where!r}: cannot read it ({exc.strerror or exc})") from None
    try:
        text = render_auth_json(source, credentials, existing=existing)
    except InvalidInput as exc:
        raise InvalidInput(f"auth file {where!r}: {exc}") from None
    try:
        return write_atomically(where, text, private=True)
    except OSError as exc:
        raise InvalidInput(f"auth file {where!r}: cannot write it ({exc.strerror or exc})") from None
