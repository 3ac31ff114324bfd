"""Backends by name: ``backend_from_url("consul://127.0.0.1:8500?dc=dc1")`` and the plugins behind it.

A backend URL's scheme names the backend: what comes before the first ``:``
and, for ``consul+https://...``, before the ``+`` (the rest of the scheme is
the backend's business). A name maps to a factory, a callable that takes the
whole backend URL and returns a :class:`~registry_config.discovery.backend.DiscoveryBackend`;
options travel in the URL's query. Three sources of names, in order of
precedence:

1. :func:`register_backend` (explicit, replaces only with ``replace=True``);
2. the built-ins (``static``, ``dns``, ``consul``), registered as
   ``"module:attr"`` text and imported on first use, so that the Consul and DNS
   extras are only needed by those who use them (fsspec's
   ``known_implementations`` carries the install hint beside the path; so do we);
3. third-party packages, through the entry-point group
   ``registry_config.backends``. Entry points are read on the first lookup and
   cached, never at import (fsspec reads them at import, which costs every
   user the scan and needs test fixtures to undo); a plugin that fails to load
   is logged and skipped (as keyring does), and a plugin never shadows a name
   registered by the other two means.

Backend URLs may carry secrets (``consul://token@host`` or ``?token=...``):
every message here that echoes a URL shows it through
:func:`registry_config.redact.quote` (``entry=True``), and a plugin's own
message about the URL is scrubbed of the URL's secrets
(:func:`registry_config.redact.secrets_of`) before it is passed on.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import re
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from ..errors import InvalidInput, MissingDependencyError, RegistryConfigError, UnknownBackendError
from ..redact import quote, redact, secrets_of, shorten
from .backend import DiscoveryBackend

__all__ = [
    "ENTRY_POINT_GROUP",
    "BackendFactory",
    "BackendInfo",
    "BackendRegistry",
    "available_backends",
    "backend_from_url",
    "backend_name",
    "backend_problem",
    "register_backend",
]

log = logging.getLogger("registry_config.discovery.registry")

ENTRY_POINT_GROUP = "registry_config.backends"
"""The entry-point group third-party packages declare their backends in."""

BackendFactory = Callable[[str], DiscoveryBackend]
"""What a name maps to: a callable from the whole backend URL to a backend (a class's ``from_url``)."""

_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,62}\Z")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9_.+-]*):")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*\Z")

Origin = Literal["built-in", "registered", "entry point"]


def _shown(url: str) -> str:
    """``url`` as a message shows it: quoted, its user-info, secret-named values and fragment withheld."""
    return quote(url, entry=True, limit=200)


def _scrub(text: str, url: str = "") -> str:
    """A message someone else wrote (about ``url``), without the URL's secrets, then shortened."""
    return shorten(redact(text, secrets_of(url) if url else ()), 500)


def backend_name(url: str) -> str:
    """The backend name a URL asks for: its scheme, lower-cased, up to the first ``+``.

    Raises :class:`InvalidInput` for text that has no scheme: ``10.0.0.1:8080``
    is refused rather than read as backend ``10.0.0.1``.
    """
    if not isinstance(url, str):
        raise InvalidInput(f"a backend URL must be text, got {type(url).__name__}")
    match = _SCHEME.match(url)
    name = match.group(1).partition("+")[0].lower() if match else ""
    if not match or not _NAME.match(name):
        raise InvalidInput(
            f"backend URL {_shown(url)} does not start with a backend name; write NAME:... "
            "(for example static:10.0.0.1:8080, dns://127.0.0.1:53, consul://127.0.0.1:8500)"
        )
    return name


@attrs.frozen
class BackendInfo:
    """What :func:`available_backends` says of one name: where it comes from and whether it can load.

    ``target`` is the ``"module:attr"`` text (or the qualified name of a
    callable registered directly); ``extra`` the ``registry-config[...]``
    extra a built-in needs, and ``requires`` the top-level modules that extra
    provides.
    """

    name: str
    target: str
    origin: Origin
    extra: str | None = None
    requires: tuple[str, ...] = ()
    distribution: str | None = None

    @property
    def installed(self) -> bool:
        """Whether the modules this backend needs are importable (checked without importing them)."""
        return all(_module_exists(module) for module in self.requires)

    @property
    def install_hint(self) -> str | None:
        """The command that installs what is missing, if anything is."""
        if self.extra is None or self.installed:
            return None
        return f"pip install 'registry-config[{self.extra}]'"


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _qualname(factory: Callable[..., Any]) -> str:
    module = getattr(factory, "__module__", None) or "?"
    name = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return f"{module}:{name}"


@attrs.define
class _Entry:
    info: BackendInfo
    factory: BackendFactory | None = None
    entry_point: importlib.metadata.EntryPoint | None = None


_BUILTINS: tuple[BackendInfo, ...] = (
    BackendInfo("static", "registry_config.discovery.registry:static_from_url", "built-in"),
    BackendInfo("dns", "registry_config.discovery.dns:DnsBackend.from_url", "built-in", "dns", ("dns",)),
    BackendInfo("consul", "registry_config.discovery.consul:ConsulBackend.from_url", "built-in", "consul", ("consul",)),
)


class BackendRegistry:
    """A table of backend names, safe to use from many threads.

    The module-level functions use one shared instance; tests and embedders
    may make their own (a fresh one knows only the built-ins and the
    entry points installed).
    """

    def __init__(self, *, builtins: bool = True, entry_points: bool = True) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._use_entry_points = entry_points
        self._entry_points_read = False
        if builtins:
            for info in _BUILTINS:
                self._entries[info.name] = _Entry(info)

    def register(self, name: str, factory: BackendFactory | str, *, replace: bool = False) -> None:
        """Map ``name`` to a factory, or to ``"module:attr"`` text imported on first use."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput(
                f"backend name {name!r} is not valid: a lower-case letter, then letters, digits, '_', '.', '-' "
                "(it is a URL scheme, so no '+' and no ':')"
            )
        if isinstance(factory, str):
            if not _TARGET.match(factory):
                raise InvalidInput(
                    f"backend target {factory!r} for {name!r} is not 'module:attr' (for example "
                    "'mypackage.backend:MyBackend.from_url')"
                )
            entry = _Entry(BackendInfo(name, factory, "registered"))
        elif callable(factory):
            entry = _Entry(BackendInfo(name, _qualname(factory), "registered"), factory=factory)
        else:
            raise InvalidInput(
                f"backend {name!r}: expected a callable taking the backend URL, or 'module:attr' text; "
                f"got {type(factory).__name__}"
            )
        with self._lock:
            existing = self._entries.get(name)
            # An entry point does not own its name until it loads: a registration takes it over.
            if existing is not None and existing.info.origin != "entry point" and not replace:
                raise InvalidInput(
                    f"backend {name!r} is already registered ({existing.info.origin}, {existing.info.target}); "
                    "pass replace=True to replace it"
                )
            self._entries[name] = entry

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a built-in too); unknown names are ignored."""
        with self._lock:
            self._entries.pop(name, None)

    def available(self) -> Mapping[str, BackendInfo]:
        """A read-only snapshot of every known name, sorted; entry points are read (not loaded) first."""
        with self._lock:
            self._read_entry_points()
            return types.MappingProxyType({name: self._entries[name].info for name in sorted(self._entries)})

    def factory(self, name: str) -> BackendFactory:
        """The factory registered under ``name``, imported now if it was given as text."""
        return self._lookup(name)[1]

    def problem(self, name: str) -> str | None:
        """Why backend ``name`` cannot be used now, or ``None`` when it can.

        A built-in is checked without importing its extra (a missing one is
        named with its install command); any other backend is loaded (its
        module imported), since only that shows a plugin that is broken. The
        reason is the library's message, already redacted.
        """
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                self._read_entry_points()
                entry = self._entries.get(name)
            if entry is not None and entry.info.origin == "built-in":
                hint = entry.info.install_hint
                return None if hint is None else f"the {entry.info.extra!r} extra is not installed: {hint}"
        try:
            self._lookup(name)
        except RegistryConfigError as exc:
            return str(exc)
        return None

    def _lookup(self, name: str) -> tuple[BackendInfo, BackendFactory]:
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                self._read_entry_points()
                entry = self._entries.get(name)
            if entry is None:
                raise UnknownBackendError(
                    f"no discovery backend is named {name!r}; known backends: {', '.join(sorted(self._entries))}. "
                    f"Third-party backends register through the entry-point group {ENTRY_POINT_GROUP!r}."
                )
            if entry.factory is None:
                entry.factory = self._load(entry)
            return entry.info, entry.factory

    def from_url(self, url: str) -> DiscoveryBackend:
        """The backend a URL names, made by its factory from the whole URL."""
        name = backend_name(url)
        try:
            info, factory = self._lookup(name)
        except UnknownBackendError as exc:
            rest = url.partition(":")[2]
            if rest.isdigit() and "." in name:
                # name:digits (name a dotted host), so there is nothing secret to withhold in it.
                raise UnknownBackendError(
                    f"{exc} {_shown(url)} looks like host:port; for a fixed list write static:{url}"
                ) from None
            raise
        shown = _shown(url)
        # A replacement error is raised outside the except block, so that the original (which may
        # quote the URL's password) is not kept as its __context__ either.
        clean: RegistryConfigError | None = None
        try:
            backend = factory(url)
        except RegistryConfigError as exc:
            scrubbed = _scrub(str(exc), url)
            if scrubbed == str(exc):
                raise
            # The backend echoed a secret of its URL: the same error, without it.
            try:
                clean = type(exc)(scrubbed)
            except TypeError:
                clean = InvalidInput(scrubbed)
        except ImportError as exc:
            clean = self._missing(info, exc)
        except Exception as exc:  # noqa: BLE001 (a plugin may raise anything; callers get one of ours)
            # A third party's factory that fails on a bad URL must still raise one of ours.
            clean = InvalidInput(
                f"backend URL {shown}: the {name!r} backend refused it: {type(exc).__name__}: {_scrub(str(exc), url)}"
            )
        if clean is not None:
            raise clean
        if not isinstance(backend, DiscoveryBackend):
            raise UnknownBackendError(
                f"backend {name!r}: its factory returned {type(backend).__name__}, which is not a discovery backend "
                "(discover, watch, close and the context-manager methods)"
            )
        return backend

    def _read_entry_points(self) -> None:
        if self._entry_points_read or not self._use_entry_points:
            return
        self._entry_points_read = True
        try:
            found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        except Exception as exc:  # noqa: BLE001 (a broken distribution's metadata must not break every lookup)
            log.warning("cannot read entry points of group %r: %s", ENTRY_POINT_GROUP, _scrub(str(exc)))
            return
        for point in sorted(found, key=lambda ep: (ep.name, ep.value)):
            dist = getattr(getattr(point, "dist", None), "name", None)
            where = f"entry point {quote(point.name, limit=80)} = {quote(point.value, limit=120)}" + (
                f" of {quote(dist, limit=80)}" if dist else ""
            )
            if not _NAME.match(point.name):
                log.warning("skipping %s: not a valid backend name", where)
                continue
            existing = self._entries.get(point.name)
            if existing is not None:
                log.warning(
                    "skipping %s: the name is taken (%s, %s)", where, existing.info.origin, existing.info.target
                )
                continue
            info = BackendInfo(point.name, point.value, "entry point", distribution=dist)
            self._entries[point.name] = _Entry(info, entry_point=point)

    def _load(self, entry: _Entry) -> BackendFactory:
        info = entry.info
        try:
            if entry.entry_point is not None:
                loaded: Any = entry.entry_point.load()
            else:
                module_name, _, attr_path = info.target.partition(":")
                loaded = importlib.import_module(module_name)
                for attr in attr_path.split("."):
                    loaded = getattr(loaded, attr)
        except ImportError as exc:
            if info.origin == "entry point":
                self._forget_broken(info, exc)
            raise self._missing(info, exc) from None
        except Exception as exc:  # noqa: BLE001 (a broken plugin is logged and skipped, whatever it raises)
            if info.origin == "entry point":
                self._forget_broken(info, exc)
            raise UnknownBackendError(
                f"backend {info.name!r} ({info.target}) cannot be loaded: {type(exc).__name__}: {_scrub(str(exc))}"
            ) from None
        if not callable(loaded):
            error = UnknownBackendError(
                f"backend {info.name!r} ({info.target}) is a {type(loaded).__name__}, not a callable taking the "
                "backend URL"
            )
            if info.origin == "entry point":
                self._forget_broken(info, error)
            raise error
        factory: BackendFactory = loaded
        return factory

    def _forget_broken(self, info: BackendInfo, exc: BaseException) -> None:
        log.warning(
            "skipping discovery backend plugin %r (%s): %s: %s",
            info.name,
            info.target,
            type(exc).__name__,
            _scrub(str(exc)),
        )
        self._entries.pop(info.name, None)

    def _missing(self, info: BackendInfo, exc: ImportError) -> UnknownBackendError:
        missing = (exc.name or "").partition(".")[0]
        if info.extra is not None and (missing in info.requires or not info.installed):
            return MissingDependencyError(
                f"the {info.name!r} backend needs the {info.extra!r} extra, which is not installed: "
                f"pip install 'registry-config[{info.extra}]'"
            )
        return UnknownBackendError(f"backend {info.name!r} ({info.target}) cannot be imported: {_scrub(str(exc))}")


def static_from_url(url: str) -> DiscoveryBackend:
    """``static:ENTRY,ENTRY,...`` (or ``static://...``): each entry as :class:`StaticBackend` accepts it.

    Entries are ``ip``, ``ip:port``, ``[v6]:port`` or ``host[:port]``,
    comma-separated; spaces around an entry are ignored, anything else in one
    is refused by the static backend with the entry named.
    """
    from .static import StaticBackend

    rest = url.partition(":")[2]
    if rest.startswith("//"):
        rest = rest[2:]
    for char, what in (("@", "user-info"), ("?", "options ('?...')"), ("#", "a fragment ('#...')")):
        if char in rest:
            raise InvalidInput(
                f"backend URL {_shown(url)}: a static list takes no {what}; write static:HOST[:PORT][,HOST[:PORT]...]"
            )
    if not rest.strip(" "):
        raise InvalidInput(f"backend URL {_shown(url)} lists no instance; write static:HOST[:PORT][,HOST[:PORT]...]")
    return StaticBackend([entry.strip(" ") for entry in rest.split(",")])


_default = BackendRegistry()


def register_backend(name: str, factory: BackendFactory | str, *, replace: bool = False) -> None:
    """Make ``backend_from_url("NAME:...")`` call ``factory`` (a callable, or ``"module:attr"`` loaded lazily).

    ``factory`` takes the whole backend URL and returns a backend; a class's
    ``from_url`` classmethod is the usual choice. A taken name (a built-in
    included) is refused with :class:`InvalidInput` unless ``replace=True``.
    """
    _default.register(name, factory, replace=replace)


def available_backends() -> Mapping[str, BackendInfo]:
    """Every backend name known now, sorted, as a read-only mapping (:class:`types.MappingProxyType`).

    The mapping is a snapshot: later registrations do not show in it. It lists
    installed plugins without importing them; :attr:`BackendInfo.installed`
    says whether a built-in's extra is there.
    """
    return _default.available()


def backend_problem(name: str) -> str | None:
    """Why backend ``name`` cannot be used now, or ``None``; loads a plugin to find out.

    See :meth:`BackendRegistry.problem`.
    """
    return _default.problem(name)


def backend_from_url(url: str) -> DiscoveryBackend:
    """The backend that ``url`` describes, such as ``static:10.0.0.1:8080`` or ``consul://127.0.0.1:8500?dc=dc1``.

    Raises :class:`UnknownBackendError` for a name nobody registered (listing
    the known ones) or a built-in whose extra is missing (naming the extra), and
    :class:`InvalidInput` when the URL itself is refused.
    """
    return _default.from_url(url)
