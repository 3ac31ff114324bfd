"""Docker's ``daemon.json``: ``insecure-registries`` (and ``registry-mirrors``) merged into the operator's file.

dockerd matches an ``insecure-registries`` entry to the image's registry
exactly as the image name writes it, so a registry on its scheme's default
port is listed as both ``host`` and ``host:443``. It refuses to start on an
entry whose host name has ``_``, so such names are left out with a warning.
Whatever the operator's file holds is kept; what cannot be written back as
JSON that dockerd reads the same way (NaN, numbers of thousands of digits, a
lone surrogate, nesting deeper than a parser follows) is refused with a typed
error rather than passed on.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..address import format_host, split_host_port
from ..errors import InvalidAddress, InvalidInput
from .model import Source, check_source, is_plan, targets, upstreams, warn

__all__ = ["render_daemon_json"]

# dockerd checks every non-CIDR insecure-registries entry against the reference library's domain grammar
# (moby registry.validateHostPort): labels of letters, digits and inner hyphens, no underscore.
_DOCKERD_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")
# Python's own limit for int <-> str conversions (sys.int_info.default_max_str_digits), on every version.
_MAX_DIGITS = 4300


def _entry_key(entry: str) -> str:
    """How Docker compares two ``insecure-registries`` entries: normalized ``host[:port]``, or the text."""
    if "/" in entry:
        return entry.strip().lower()
    try:
        host, port = split_host_port(entry.strip())
    except InvalidAddress:
        return entry
    return format_host(host) if port is None else f"{format_host(host)}:{port}"


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise InvalidInput(
            f"existing daemon.json holds a number of {len(text)} digits; dockerd reads no such number: fix the file"
        )
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidInput(
            f"existing daemon.json holds the number {text[:40]!r}, too large for dockerd to read: fix the file"
        )
    return value


def _parse_constant(name: str) -> Any:
    raise InvalidInput(f"existing daemon.json holds {name}, which is not JSON: dockerd refuses it; fix the file")


def _existing_object(existing: str | bytes | Mapping[str, Any] | None) -> dict[str, Any]:
    if existing is None:
        return {}
    if isinstance(existing, Mapping):
        return dict(existing)
    if isinstance(existing, bytes):
        try:
            existing = existing.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"existing daemon.json is not UTF-8 text (byte {exc.start}); fix the file first"
            ) from None
    if not isinstance(existing, str):
        raise InvalidInput(f"existing daemon.json must be text or a mapping, got {type(existing).__name__}")
    if not existing.strip():
        return {}
    try:
        loaded = json.loads(existing, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"existing daemon.json is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix it first: the Docker daemon would refuse to start with it"
        ) from None
    except RecursionError:
        raise InvalidInput(
            "existing daemon.json is nested too deeply to read; dockerd's settings are a few levels deep: fix the file"
        ) from None
    if not isinstance(loaded, dict):
        raise InvalidInput(
            f"existing daemon.json holds a JSON {type(loaded).__name__}, not an object; the Docker daemon "
            'expects an object such as {"insecure-registries": [...]}'
        )
    return loaded


def _dockerd_accepts(entry: str) -> bool:
    """Whether dockerd's ``validateHostPort`` accepts ``entry`` (a CIDR or an IP always passes)."""
    if "/" in entry:
        return True
    host, _ = split_host_port(entry, where="insecure registry")
    if ":" in host or host.replace(".", "").isdigit():
        return True
    return all(_DOCKERD_LABEL.match(label) for label in host.split("."))


def _string_list(data: dict[str, Any], key: str, example: str) -> list[str]:
    current = data.get(key, [])
    if not isinstance(current, list) or not all(isinstance(item, str) for item in current):
        raise InvalidInput(f"existing daemon.json: {key!r} must be a list of strings such as [{example!r}]")
    return current


def _dump(data: dict[str, Any]) -> str:
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except RecursionError:
        raise InvalidInput("existing daemon.json is nested too deeply to write back: fix the file") from None
    except (ValueError, TypeError) as exc:
        # allow_nan=False refuses NaN and infinities; a mapping may hold what JSON cannot (a set, an object)
        # or an int beyond Python's conversion limit.
        raise InvalidInput(f"existing daemon.json cannot be written back as JSON: {str(exc)[:120]}") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"existing daemon.json holds a lone surrogate ({text[exc.start]!r}), which is no character: "
            "dockerd would read it as U+FFFD; fix the file"
        ) from None
    return text


def _new_entries(source: Source) -> list[str]:
    if not is_plan(source):
        return list(source.entries)  # type: ignore[union-attr]
    found, _networks = targets(source)
    return [name for target in found if target.insecure for name in target.names()]


def render_daemon_json(
    source: Source,
    *,
    existing: str | bytes | Mapping[str, Any] | None = None,
    mirror_of: Iterable[str] = (),
) -> str:
    """Docker's ``daemon.json`` with the insecure registries merged into ``existing`` (its text or its object).

    Every other key of ``existing`` is kept, in its order; entries already
    listed stay first and in place, new ones follow, none twice. From a plan
    the entries are its insecure registries by every name an image may give
    them (``host`` and ``host:443`` on a default port); from a policy, its
    entries (CIDRs included: Docker understands them). A verified registry
    needs no entry: its CA goes to ``/etc/docker/certs.d`` (see
    :func:`~registry_config.render.render_tree`).

    A new entry whose host name dockerd refuses (a label with ``_``, as in
    ``docker_registry.service.consul``) is left out with a
    :class:`~registry_config.errors.RegistryConfigWarning`: dockerd refuses to
    start on such a file, and Docker cannot name an image on that host
    anyway, so the instances' IP entries are what counts.

    ``mirror_of=("docker.io",)`` adds the plan's registry to
    ``registry-mirrors``; Docker mirrors Docker Hub only, so any other
    upstream is left out with a warning. Raises
    :class:`~registry_config.errors.InvalidInput` for an ``existing`` file
    that cannot be merged and written back as the JSON dockerd reads.
    """
    check_source(source)
    mirrors = upstreams(mirror_of)
    data = _existing_object(existing)
    current = _string_list(data, "insecure-registries", "10.0.0.5:5000")
    merged: dict[str, str] = {}
    for entry in current:
        merged.setdefault(_entry_key(entry), entry)
    for entry in _new_entries(source):
        if not _dockerd_accepts(entry):
            warn(
                f"daemon.json: left out {entry!r}: dockerd refuses host names with '_' in insecure-registries "
                "(and would not start); images are pulled from the instances' addresses instead",
                stacklevel=2,
            )
            continue
        merged.setdefault(_entry_key(entry), entry)
    data["insecure-registries"] = list(merged.values())
    if mirrors:
        _add_mirror(data, source, mirrors)
    return _dump(data)


def _add_mirror(data: dict[str, Any], source: Source, mirrors: tuple[str, ...]) -> None:
    for upstream in mirrors:
        if upstream != "docker.io":
            warn(f"daemon.json: Docker mirrors Docker Hub only: no mirror of {upstream!r} written", stacklevel=3)
    if "docker.io" not in mirrors:
        return
    if not is_plan(source):
        warn("daemon.json: a policy names no registry to mirror through: no registry-mirrors written", stacklevel=3)
        return
    spec = source.spec
    if "_" in spec.host:
        warn(
            f"daemon.json: left out the mirror {spec.url!r}: dockerd refuses host names with '_'; "
            "use an instance's address as the registry URL",
            stacklevel=3,
        )
        return
    current = _string_list(data, "registry-mirrors", "https://mirror.example")
    mirror = spec.url.rstrip("/")
    if mirror not in (entry.rstrip("/") for entry in current):
        current = [*current, mirror]
    data["registry-mirrors"] = current
