"""Images on the private registry: pinning a tag to its digest, through the registry's instances, with a login.

- :mod:`.challenge`: ``WWW-Authenticate`` challenges, read as Docker clients read them;
- :mod:`.manifest`: media types, digests over exact bytes, a platform out of an index;
- :mod:`.distribution`: one instance asked for manifests, with the Basic and Bearer token logins;
- :mod:`.resolve`: :func:`resolve_image` and :class:`ResolvedImage`, across the plan's instances.
"""

from __future__ import annotations

from .resolve import ResolvedImage, resolve_image

__all__ = ["ResolvedImage", "resolve_image"]
