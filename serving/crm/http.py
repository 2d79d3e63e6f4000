"""HTTP plumbing shared by the CRM sinks: secrets, redaction, retries and backoff.

Only this module and the sinks touch outside systems, so only they retry. The rules:

- every attempt first takes a slot from the (optional) client-side rate limiter;
- connection errors, timeouts and ``5xx`` answers are retried with jittered exponential backoff,
  at most :attr:`RetryPolicy.max_attempts` attempts in all (the budget is ``urllib3``'s
  :class:`~urllib3.util.Retry`, see :func:`transient_retry`; the delay is :func:`backoff_delay`);
- ``429`` answers are handed to a per-sink policy that returns how long to wait (``Retry-After``
  first) or raises :class:`~features.errors.CrmError` to stop (e.g. a daily quota);
- every other status is returned to the caller, which knows what it means.

Tokens travel only in the ``Authorization`` header of each request. They are held in a
:class:`Secret` whose ``repr`` is masked, every message built from a server answer goes through
:func:`redact`, and exceptions from the HTTP library are re-raised without their chained cause
(which carries the prepared request, headers included).
"""

from __future__ import annotations

import base64
import email.utils
import logging
import random
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

import pandas as pd
import requests
from urllib3.exceptions import MaxRetryError
from urllib3.util import Retry

from features.errors import ConfigError, CrmError
from serving.crm.ratelimit import Clock, SlidingWindowLimiter

__all__ = [
    "Secret",
    "redact",
    "RetryPolicy",
    "ApiClient",
    "PushCancelled",
    "parse_retry_after",
    "backoff_delay",
    "transient_retry",
    "short_body",
]

logger = logging.getLogger("corecast.crm")

MASK = "***"


class Secret:
    """A credential that never shows itself in ``repr``, ``str``, logs or pickles.

    Args:
        value: The secret text (e.g. an access token).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError("a credential must be a non-empty string")
        self._value = value.strip()

    def reveal(self) -> str:
        """Return the secret text (only to put it in a request header)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__

    def __reduce__(self):  # noqa: D105 - refuses pickling on purpose
        raise TypeError("a Secret cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))


def redact(text: object, secrets: Iterable[Secret | str | None] = ()) -> str:
    """Return ``str(text)`` with every secret replaced by ``***``.

    Args:
        text: Anything printable (a message, a response body, an exception).
        secrets: Secrets (or plain strings) to mask; ``None`` entries are ignored.
    """
    out = str(text)
    for secret in secrets:
        if secret is None:
            continue
        value = secret.reveal() if isinstance(secret, Secret) else str(secret)
        if value:
            out = secret_pattern(value).sub(MASK, out)
    return out


def secret_pattern(value: str) -> re.Pattern:
    """The forms a server may echo a secret in: as is in any letter case, percent-encoded, and
    base64-encoded (standard or URL-safe, with or without padding)."""
    forms = {value, quote(value, safe="")}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(value.encode()).decode()
        forms |= {encoded, encoded.rstrip("=")}
    exact = "|".join(re.escape(f) for f in sorted(forms - {value}, key=len, reverse=True))
    return re.compile(f"(?i:{re.escape(value)})|{exact}")


def short_body(response: requests.Response, limit: int = 300) -> str:
    """Return the start of a response body as one line (for error messages)."""
    try:
        text = response.text
    except Exception:  # noqa: BLE001 - an undecodable body only loses the excerpt
        return "<unreadable body>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class PushCancelled(CrmError):
    """Raised in a worker when the push was stopped because another batch hit a hard error."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on one request.

    Attributes:
        max_attempts: Attempts per request for connection errors, timeouts and ``5xx`` (>= 1).
        max_rate_limited: How many ``429`` answers one request may receive before giving up.
        backoff_base_s: First backoff delay; doubles on every further attempt.
        backoff_max_s: Upper bound of one backoff delay.
        max_retry_after_s: Longest ``Retry-After`` the push is willing to wait; a longer one stops
            the push (records stay pending, re-run later).
        connect_timeout_s: Connection timeout per attempt.
        read_timeout_s: Read timeout per attempt.
    """

    max_attempts: int = 5
    max_rate_limited: int = 12
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_rate_limited < 0:
            raise ConfigError("retry policy: max_attempts must be >= 1, max_rate_limited >= 0")
        if min(self.backoff_base_s, self.backoff_max_s, self.max_retry_after_s) < 0:
            raise ConfigError("retry policy: delays must not be negative")
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ConfigError("retry policy: timeouts must be positive")


def transient_retry(policy: RetryPolicy) -> Retry:
    """The budget of transient failures of one request, as ``urllib3``'s ``Retry``.

    ``RetryPolicy.max_attempts - 1`` retries in all of timeouts, connection errors and ``5xx``
    answers, whatever the method (the ledger and idempotent upserts make a resend safe). A
    ``429`` is not counted against it (it has its own budget, ``max_rate_limited``); no
    redirect is followed. The client counts with :meth:`~urllib3.util.Retry.increment` and
    sleeps itself (:func:`backoff_delay`, the injected clock, the shared limiter).
    """
    return Retry(
        total=policy.max_attempts - 1,
        redirect=0,
        allowed_methods=None,
        status_forcelist=range(500, 600),
        raise_on_redirect=False,
        raise_on_status=False,
        respect_retry_after_header=False,
    )


class _Transient(NamedTuple):
    """A failed attempt worth retrying: ``what`` for the log, ``problem`` for the final error."""

    what: str
    problem: str


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Jittered exponential backoff ("equal jitter") before retry number ``attempt`` (1-based).

    The delay is drawn uniformly in ``[d / 2, d]`` with ``d = min(max, base * 2 ** (attempt-1))``.
    Not ``Retry.get_backoff_time``: that one retries the first failure at once and draws its
    jitter from the process-wide random generator, not the client's seeded one.
    """
    ceiling = min(policy.backoff_max_s, policy.backoff_base_s * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + rng.random() * ceiling / 2


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or an HTTP date) into seconds, or ``None``."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


RateLimitHandler = Callable[[requests.Response, float | None], float | None]
"""Called on a ``429`` with the response and its parsed ``Retry-After``; returns seconds to wait
(``None`` = jittered backoff) or raises :class:`CrmError` to stop."""


class ApiClient:
    """A small retrying HTTP client around a caller-provided :class:`requests.Session`.

    Args:
        session: The session to send with (connection pooling; passed in so tests can swap it).
        base_url: Scheme, host and optional path prefix; request paths are appended.
        token: Bearer token, or ``None`` for unauthenticated endpoints (e.g. signed webhooks).
        policy: Retry and timeout settings.
        limiter: Optional client-side rate limiter (one slot per attempt).
        clock: Time source for backoff sleeps.
        on_rate_limited: What to do with a ``429`` (default: wait ``Retry-After`` or back off).
        service: Name used in messages (e.g. ``"HubSpot"``).
        display_url: What to print instead of ``base_url`` in messages (when the URL itself is
            sensitive, e.g. a webhook URL with a key in its path).
        seed: Seed of the jitter random generator (deterministic tests).
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        *,
        token: Secret | None = None,
        policy: RetryPolicy | None = None,
        limiter: SlidingWindowLimiter | None = None,
        clock: Clock | None = None,
        on_rate_limited: RateLimitHandler | None = None,
        service: str = "CRM",
        display_url: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.policy = policy or RetryPolicy()
        self.limiter = limiter
        self.clock = clock or Clock()
        self.on_rate_limited = on_rate_limited
        self.service = service
        self.display_url = display_url or self.base_url
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._cancelled = threading.Event()
        self.requests_sent = 0
        self.retries = 0
        self.rate_limited = 0

    def __repr__(self) -> str:
        return f"ApiClient(service={self.service!r}, url={self.display_url!r}, token={MASK})"

    # -- helpers -----------------------------------------------------------------------------

    def redact(self, text: object) -> str:
        """Mask the token and the base URL (when it is sensitive) in ``text``."""
        out = redact(text, [self._token])
        if self.display_url != self.base_url:
            out = out.replace(self.base_url, self.display_url)
        return out

    def redact_many(self, values: pd.Series) -> pd.Series:
        """Vectorised :meth:`redact` of a text column (missing values stay missing)."""
        if self._token is None:
            return values
        text = values.astype("str").str.replace(
            secret_pattern(self._token.reveal()), MASK, regex=True
        )
        return text.where(values.notna())

    def cancel(self) -> None:
        """Make every later attempt (in any thread) raise :class:`PushCancelled`."""
        self._cancelled.set()

    def resume(self) -> None:
        """Undo :meth:`cancel` (the engine calls it once a stopped push has drained)."""
        self._cancelled.clear()

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.clock.sleep(seconds)

    def _jitter(self, attempt: int) -> float:
        with self._rng_lock:
            return backoff_delay(attempt, self.policy, self._rng)

    @staticmethod
    def _default_rate_limited(response: requests.Response, retry_after: float | None):
        return retry_after  # None: fall back to jittered backoff

    # -- the request loop --------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        prepare_headers: Callable[[], Mapping[str, str]] | None = None,
    ) -> requests.Response:
        """Send one logical request, retrying transient failures.

        Args:
            method: HTTP method.
            path: Path appended to the base URL (``""`` for the base URL itself).
            json_body: JSON-serialisable body.
            data: Raw body (bytes or text).
            headers: Extra headers.
            params: Query parameters.
            prepare_headers: Called before every attempt for headers that must be fresh
                (e.g. a webhook signature with the current timestamp).

        Returns:
            The first response that is neither ``429`` nor ``5xx``.

        Raises:
            CrmError: Retries exhausted, a ``429`` policy said stop, or the push was cancelled.
        """
        where = f"{method} {self.display_url}{path}"
        send = {"json": json_body, "data": data, "params": params}
        retry, limited = transient_retry(self.policy), 0
        while True:
            outcome = self._attempt(method, path, where, send, headers, prepare_headers)
            response = None if isinstance(outcome, _Transient) else outcome
            if response is not None and response.status_code == 429:
                limited += 1
                self._wait_rate_limited(response, where, limited)
                continue
            if response is not None and not retry.is_retry(method, response.status_code):
                return response
            if response is not None:
                outcome = _Transient(
                    f"got {response.status_code}",
                    f"HTTP {response.status_code}: {self.redact(short_body(response))}",
                )
            retry = self._next_retry(retry, method, path, where, outcome, response)

    def _attempt(
        self,
        method: str,
        path: str,
        where: str,
        send: Mapping[str, Any],
        headers: Mapping[str, str] | None,
        prepare_headers: Callable[[], Mapping[str, str]] | None,
    ) -> requests.Response | _Transient:
        """One attempt: cancel check, a limiter slot, fresh headers, the token, then send.

        Returns:
            The response, or what went wrong on a timeout or a connection error (transient).

        Raises:
            PushCancelled: The push was stopped.
            CrmError: Any other failure of the HTTP library (not retried).
        """
        if self._cancelled.is_set():
            raise PushCancelled(f"{self.service}: {where} not sent, the push was stopped")
        if self.limiter is not None:
            self.limiter.acquire()
        send_headers = dict(headers or {})
        if prepare_headers is not None:
            send_headers.update(prepare_headers())
        if self._token is not None:
            send_headers["Authorization"] = f"Bearer {self._token.reveal()}"
        with self._count_lock:
            self.requests_sent += 1
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                **send,
                headers=send_headers,
                timeout=(self.policy.connect_timeout_s, self.policy.read_timeout_s),
                allow_redirects=False,
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
            return _Transient(kind, f"{kind} ({self.redact(type(exc).__name__)})")
        except requests.RequestException as exc:
            # Raised outside this block so the library exception (which holds the prepared
            # request, Authorization header included) is not chained to ours.
            fatal = f"{self.service}: {where} failed: {self.redact(exc)}"
        else:
            return response
        raise CrmError(fatal)

    def _next_retry(
        self,
        retry: Retry,
        method: str,
        path: str,
        where: str,
        failure: _Transient,
        response: requests.Response | None,
    ) -> Retry:
        """Count a transient failure (a timeout, a connection error or a ``5xx``) against the
        request's budget and back off before the next attempt.

        Returns:
            The budget left (``urllib3``'s :class:`~urllib3.util.Retry`, one more in its
            history).

        Raises:
            CrmError: The budget is spent (``RetryPolicy.max_attempts`` attempts made).
        """
        try:
            # Neither the exception nor the response is handed over: the history keeps no
            # request (headers included) and no body.
            retry = retry.increment(method, self.display_url + path)
        except MaxRetryError:
            exhausted = True
        else:
            exhausted = False
        if exhausted:  # raised outside the except block: nothing chained to it
            raise CrmError(
                f"{self.service}: {where} failed after {len(retry.history) + 1} attempts: "
                f"{failure.problem}. Unsent records stay pending in the ledger; re-run the push "
                "when the service is back."
            )
        delay = self._jitter(len(retry.history))
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.policy.max_retry_after_s))
        logger.info("%s: %s %s; retry in %.2f s", self.service, where, failure.what, delay)
        with self._count_lock:
            self.retries += 1
        self._sleep(delay)
        return retry

    def _wait_rate_limited(self, response: requests.Response, where: str, limited: int) -> None:
        """Wait out the ``limited``-th ``429`` in a row (not an attempt: it has its own budget).

        The sink's policy (:attr:`on_rate_limited`) says how long, from ``Retry-After``, or
        stops (e.g. a daily limit); without an answer the wait is a jittered backoff. With a
        shared limiter every worker pauses, not only this one.

        Raises:
            CrmError: The policy said stop, the budget of ``429`` answers is spent, or the wait
                asked for is longer than ``RetryPolicy.max_retry_after_s``.
        """
        with self._count_lock:
            self.rate_limited += 1
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        handler = self.on_rate_limited or self._default_rate_limited
        wait = handler(response, retry_after)
        if limited > self.policy.max_rate_limited:
            raise CrmError(
                f"{self.service}: {where} was rate limited {limited} times in a row "
                f"(429: {self.redact(short_body(response))}); stopping. Lower the request "
                "rate or re-run later — unsent records stay pending in the ledger."
            )
        if wait is None:
            wait = self._jitter(limited)
        if wait > self.policy.max_retry_after_s:
            raise CrmError(
                f"{self.service}: {where} asked to wait {wait:.0f} s (429), longer than "
                f"the {self.policy.max_retry_after_s:.0f} s allowed; stopping. Re-run "
                "later — unsent records stay pending in the ledger."
            )
        logger.info("%s: %s rate limited (429); waiting %.2f s", self.service, where, wait)
        if self.limiter is not None:
            self.limiter.block_for(wait)
        else:
            self._sleep(wait)
