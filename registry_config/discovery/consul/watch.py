"""Watching a service with Consul's blocking queries, as a good citizen of a large fleet.

Consul's advice (``api-docs/features/blocking.mdx``) and what it costs when
thousands of stagers follow it:

- each query waits on the server until the service's index moves or
  ``wait`` passes (5 minutes by default, as Consul's own): an idle watch
  costs one request per ``wait``;
- an index that goes backwards is reset to 0 (the next query is a plain
  read), and an index below 1 is never sent;
- under churn the loop is rate-limited by a token bucket: a burst of 2, then
  one query per ``watch_min_interval`` (5 s by default);
- stopping is prompt whatever the wait: the stop signal travels with each
  request, and the transport closes the connection from the stopping side.

Errors after the first snapshot are logged (redacted, as every message of
the backend is) and retried with backoff, except a query Consul refuses
(:class:`DiscoveryQueryError`), which no retry can fix: the watch re-raises it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator

from ...errors import DiscoveryError, DiscoveryQueryError
from ..backend import NeverStop, StopSignal
from ..model import Discovery, ServiceQuery

__all__ = ["TokenBucket", "watch_service"]

log = logging.getLogger("registry_config.discovery.consul")


class TokenBucket:
    """``burst`` queries at once, then one per ``interval`` seconds; ``interval`` 0 means no limit."""

    def __init__(self, burst: int, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        if self.interval > 0:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) / self.interval)
        else:
            self._tokens = float(self.burst)
        self._updated = now

    def delay(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) * self.interval

    def take(self, stop: StopSignal) -> bool:
        """Wait for a token and take it; ``False`` if ``stop`` was set meanwhile."""
        while (pause := self.delay()) > 0:
            if stop.wait(pause):
                return False
        if stop.is_set():
            return False
        self._tokens -= 1
        return True


def _usable(index: int | None) -> int:
    return index if index is not None and index >= 1 else 0


def watch_service(
    fetch: Callable[[int | None, StopSignal], Discovery],
    query: ServiceQuery,
    *,
    stop: StopSignal | None,
    wait: float,
    interval: float,
    burst: int,
    max_backoff: float,
    where: str,
) -> Iterator[Discovery]:
    """Yield the instances now, then again each time they change; ``fetch(index, stop)`` asks Consul once.

    The first error propagates (there is nothing to stage from yet), and so
    does a :class:`DiscoveryQueryError` at any time; other errors are logged
    and retried with exponential backoff (1 s, 2 s, 4 s... up to ``max_backoff``
    seconds) instead of the token bucket. An
    error that the stop signal caused ends the watch quietly.
    """
    signal: StopSignal = stop if stop is not None else NeverStop()
    bucket = TokenBucket(burst, interval)
    if not bucket.take(signal):
        return
    try:
        last = fetch(None, signal)
    except DiscoveryError:
        if signal.is_set():
            return
        raise
    yield last
    index = _usable(last.index)
    failures = 0
    while True:
        # A retry has waited its backoff already; an ordinary query waits for the bucket.
        if signal.is_set() if failures else not bucket.take(signal):
            return
        try:
            current = fetch(index or None, signal)
        except DiscoveryQueryError:
            raise
        except DiscoveryError as exc:
            if signal.is_set():
                return
            failures += 1
            delay = min(max_backoff, 2.0 ** min(failures - 1, 16))  # 1 s, 2 s, 4 s...
            delay *= random.uniform(0.8, 1.0)  # noqa: S311 (spreading retries, not a secret)
            log.warning(
                "consul watch of service %r at %s failed (%s); retrying in %.1fs", query.name, where, exc, delay
            )
            if signal.wait(delay):
                return
            continue
        if failures:
            log.info("consul watch of service %r at %s recovered", query.name, where)
        failures = 0
        new_index = current.index
        unusable = new_index is None or new_index < 1
        # Consul's rule: an index that went backwards, or is below 1, restarts from a plain read.
        index = 0 if new_index is None or new_index < 1 or new_index < index else new_index
        if current.instances != last.instances:
            last = current
            yield current
        if unusable and signal.wait(wait):
            # Without an index no query can block: poll once per wait rather than hammer the agent.
            return
