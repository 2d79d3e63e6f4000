"""Client-side rate limiting: a thread-safe sliding-window limiter with an injectable clock.

HubSpot counts requests per account in a rolling 10-second window; staying a little under the
account's burst limit (default 190 requests / 10 s) avoids most ``429`` answers in the first place.
The limiter is shared by every worker thread of one sink, and a ``429`` can pause all of them at
once through :meth:`SlidingWindowLimiter.block_for`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from features.errors import ConfigError

__all__ = ["Clock", "SlidingWindowLimiter", "ManualClock"]


@dataclass(frozen=True)
class Clock:
    """The two time primitives the limiter and the retry loop need (injectable for tests).

    Attributes:
        now: Monotonic seconds.
        sleep: Blocks for the given number of seconds.
    """

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass
class ManualClock:
    """A fake clock for tests: ``sleep`` advances ``now`` instantly and records every wait.

    Attributes:
        t: Current time in seconds.
        sleeps: Every duration passed to :meth:`sleep`, in order.
    """

    t: float = 0.0
    sleeps: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        """Return the current fake time."""
        with self._lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        """Advance the fake time by ``seconds`` (never blocks)."""
        with self._lock:
            self.sleeps.append(float(seconds))
            self.t += max(0.0, float(seconds))

    def as_clock(self) -> Clock:
        """Return a :class:`Clock` backed by this fake clock."""
        return Clock(now=self.now, sleep=self.sleep)


class SlidingWindowLimiter:
    """Allow at most ``max_calls`` acquisitions in any window of ``window_s`` seconds.

    Args:
        max_calls: Requests allowed per window (> 0).
        window_s: Window length in seconds (> 0).
        clock: Time source; ``Clock()`` uses the real monotonic clock.

    Raises:
        ConfigError: If a limit is not positive.
    """

    def __init__(self, max_calls: int, window_s: float, clock: Clock | None = None) -> None:
        if max_calls <= 0 or window_s <= 0:
            raise ConfigError(
                f"rate limit: need a positive number of calls per positive window, got "
                f"{max_calls} calls per {window_s} s"
            )
        self.max_calls = int(max_calls)
        self.window_s = float(window_s)
        self._clock = clock or Clock()
        self._stamps: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def __repr__(self) -> str:
        return f"SlidingWindowLimiter(max_calls={self.max_calls}, window_s={self.window_s})"

    def _delay(self, now: float) -> float:
        """Seconds to wait before a call may start at ``now`` (0 = may start). Lock held."""
        while self._stamps and self._stamps[0] <= now - self.window_s:
            self._stamps.popleft()
        wait = max(0.0, self._blocked_until - now)
        if len(self._stamps) >= self.max_calls:
            wait = max(wait, self._stamps[0] + self.window_s - now)
        return wait

    def acquire(self) -> float:
        """Block until a call is allowed, then count it.

        Returns:
            The total number of seconds this call waited.
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock.now()
                wait = self._delay(now)
                if wait <= 0:
                    self._stamps.append(now)
                    self.waited_s += waited
                    return waited
            self._clock.sleep(wait)
            waited += wait

    def block_for(self, seconds: float) -> None:
        """Make every caller wait at least ``seconds`` from now (used after a ``429``)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock.now() + float(seconds))

    def in_window(self) -> int:
        """Return how many calls were counted in the current window."""
        with self._lock:
            self._delay(self._clock.now())
            return len(self._stamps)
