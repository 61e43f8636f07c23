"""A circuit breaker for one data custodian (SECURITY R59).

When a custodian is down, every job retrying on its own (R57) multiplies the load on a
service that is already failing and keeps workers busy waiting. The breaker counts
*operations* that failed after their retries (a connect error, a timeout, or a 5xx/429 the
retry policy gave up on) and, after ``failure_threshold`` of them in a row spanning at least
``min_span_s`` seconds, opens: requests fail at once with
:class:`~greenbutton.CircuitOpenError`, nothing is sent. After a cool-down (``cooldown_s``
times a random factor in ``[1, 1 + jitter]``, so that many clients do not come back in step)
one caller is let through as a probe (half-open) while the others still fail fast; its
success closes the circuit, its failure re-opens it with the cool-down doubled, up to
``max_cooldown_s``. Any other answer (2xx-4xx but 429) is a success: the custodian is up,
even if it refused this request.

Why the span: R59 is about *sustained* failure. A blip (a handful of quick 5xx answers within
a second) is what the retries (R57) and the job runner's own attempts are for; opening on it
would turn one bad second into ``cooldown_s`` of refusals. A real outage (connect timeouts,
503s with backoff between attempts) spans the default 10 s within two or three operations.

The breaker only decides; the drivers in ``_flows`` send, and the probe and every request
after it still wait for the rate limiter (R58), so recovery causes no burst. One breaker
belongs to one client (pass the same instance to several clients to share it in-process);
its clock is injectable, so tests move time instead of sleeping.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Literal

from .._errors import CircuitOpenError, ConfigurationError

__all__ = ["CircuitBreaker"]

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Fail fast after ``failure_threshold`` consecutive failed operations over at least
    ``min_span_s`` seconds (R59).

    Thread-safe; its lock is held only to update counters, so coroutines may use it too.
    ``clock`` is monotonic seconds (R55) and ``rng`` draws the cool-down jitter.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        min_span_s: float = 10.0,
        cooldown_s: float = 30.0,
        max_cooldown_s: float = 300.0,
        jitter: float = 0.5,
        name: str = "the data custodian",
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        if failure_threshold < 1:
            raise ConfigurationError(f"failure_threshold must be at least 1: {failure_threshold}")
        if not 0 < cooldown_s <= max_cooldown_s:
            raise ConfigurationError("need 0 < cooldown_s <= max_cooldown_s")
        if min_span_s < 0:
            raise ConfigurationError(f"min_span_s must not be negative: {min_span_s}")
        if jitter < 0:
            raise ConfigurationError(f"jitter must not be negative: {jitter}")
        self.failure_threshold = failure_threshold
        self.min_span_s = min_span_s
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.jitter = jitter
        self.name = name
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._lock = threading.Lock()
        self._failures = 0  # consecutive failed operations
        self._first_failure = 0.0  # when the current run of failures began
        self._opens = 0  # consecutive openings without a success (doubles the cool-down)
        self._open_until: float | None = None  # None: closed
        self._probing = False  # a half-open probe is in flight

    @property
    def state(self) -> State:
        """``"closed"`` (sending), ``"open"`` (failing fast) or ``"half_open"`` (one
        probe may go)."""
        with self._lock:
            if self._open_until is None:
                return "closed"
            if self._probing or self._clock() >= self._open_until:
                return "half_open"
            return "open"

    @property
    def failures(self) -> int:
        """Consecutive failed operations so far."""
        return self._failures

    def before(self, url: str | None = None) -> bool:
        """Ask to send; returns True when this caller is the half-open probe.

        Raises :class:`CircuitOpenError` (naming ``url``) while the circuit is open, or
        while another caller's probe is out."""
        with self._lock:
            if self._open_until is None:
                return False
            now = self._clock()
            if self._probing or now < self._open_until:
                wait = max(0.0, self._open_until - now)
                where = f"; not sending {url}" if url else ""
                raise CircuitOpenError(
                    f"{self.name} failed {self._failures} operations in a row{where}; "
                    f"next try in {wait:.1f} s (circuit breaker, SECURITY R59)",
                    url=url,
                    retry_after=wait,
                    failures=self._failures,
                )
            self._probing = True
            return True

    def success(self) -> None:
        """The custodian answered: close the circuit and forget past failures."""
        with self._lock:
            self._failures = 0
            self._opens = 0
            self._open_until = None
            self._probing = False

    def failure(self) -> None:
        """An operation failed after its retries: count it, open (or re-open) when due."""
        with self._lock:
            now = self._clock()
            self._failures += 1
            if self._failures == 1:
                self._first_failure = now
            sustained = (
                self._failures >= self.failure_threshold
                and now - self._first_failure >= self.min_span_s
            )
            if self._probing or (self._open_until is None and sustained):
                self._opens += 1
                base = min(self.max_cooldown_s, self.cooldown_s * 2 ** (self._opens - 1))
                self._open_until = now + base * self._rng.uniform(1, 1 + self.jitter)
                self._probing = False

    def release(self, probe: bool) -> None:
        """The operation ended with neither verdict (cancelled, a local error): if it was the
        probe, let the next caller probe instead."""
        if probe:
            with self._lock:
                self._probing = False

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.state} failures={self._failures}>"
