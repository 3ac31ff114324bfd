"""ACL tokens as the catalog and health endpoints apply them: unknown tokens refused, the rest filtered.

Consul resolves the request's token first: one it does not know is refused
with ``403 ACL not found`` (acl/errors.go ``ErrNotFound``). A known token is
never refused on ``/v1/catalog/service`` or ``/v1/health/service``: the
entries whose service or node it may not read are left out of the answer
(agent/consul/acl.go ``filterACL``), and the answer says so with
``X-Consul-Results-Filtered-By-ACLs: true``, but only to a request that
carried a token (agent/consul/rpc.go ``maskResultsFilteredByACLs``: the
anonymous token must not learn that something is hidden). Every answer
carries ``X-Consul-Default-ACL-Policy`` (``allow`` or ``deny``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from .catalog import Instance
from .params import QueryError

__all__ = ["Acl", "Token"]


@attrs.frozen
class Token:
    """What one token may read: ``services`` and ``nodes`` (``None``: all of them)."""

    name: str
    services: frozenset[str] | None
    nodes: frozenset[str] | None

    def may_read(self, instance: Instance) -> bool:
        return (self.services is None or instance.service in self.services) and (
            self.nodes is None or instance.node in self.nodes
        )


@attrs.frozen
class Decision:
    """The token a request is answered with, and whether it carried one."""

    token: Token | None  # None: ACLs are off
    presented: bool

    def filter(self, instances: Sequence[Instance]) -> tuple[list[Instance], bool]:
        """The instances the token may read, and whether the answer says some were hidden."""
        if self.token is None:
            return list(instances), False
        kept = [instance for instance in instances if self.token.may_read(instance)]
        return kept, self.presented and len(kept) != len(instances)


class Acl:
    """The ACL system: off until the first token is added; the anonymous token answers requests without one."""

    def __init__(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.anonymous_services: frozenset[str] = frozenset()

    @property
    def default_policy(self) -> str:
        """``X-Consul-Default-ACL-Policy``: ``allow`` while ACLs are off; ``deny`` once on, as tokens are applied here.

        With ACLs on, a token (and the anonymous one) reads only what it was
        given, which is what ``acl.default_policy = "deny"`` means.
        """
        return "deny" if self.tokens else "allow"

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def add(self, secret: str, *, name: str, services: Iterable[str] | None, nodes: Iterable[str] | None) -> None:
        self.tokens[secret] = Token(
            name, None if services is None else frozenset(services), None if nodes is None else frozenset(nodes)
        )

    def name_of(self, secret: str | None) -> str | None:
        """How the request log names a token: ``None``, its name, or ``"<unknown>"``; never the secret."""
        if secret is None:
            return None
        token = self.tokens.get(secret)
        return token.name if token is not None else "<unknown>"

    def decide(self, secret: str | None) -> Decision:
        """The token to answer with, or QueryError(403, "ACL not found") for one Consul does not know."""
        if not self.tokens:
            return Decision(None, secret is not None)
        if secret is None:
            return Decision(Token("anonymous", self.anonymous_services, None), False)
        token = self.tokens.get(secret)
        if token is None:
            raise QueryError(403, "ACL not found")
        return Decision(token, True)
