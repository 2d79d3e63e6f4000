"""Sliding-window limiter, Retry-After parsing, backoff and the retrying HTTP client."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from features.errors import ConfigError, CrmError
from serving.crm.http import (
    ApiClient,
    RetryPolicy,
    Secret,
    backoff_delay,
    parse_retry_after,
    redact,
)
from serving.crm.ratelimit import ManualClock, SlidingWindowLimiter


def test_limiter_allows_max_calls_per_window_then_waits_for_the_oldest():
    clock = ManualClock()
    limiter = SlidingWindowLimiter(3, 10.0, clock.as_clock())
    starts = []
    for _ in range(7):
        limiter.acquire()
        starts.append(clock.now())
        clock.t += 1.0  # one second of work between calls
    # calls at 0, 1, 2; the 4th must wait until 0 + 10; then 11, 12; then 20
    assert starts == [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 20.0]
    assert clock.sleeps == [7.0, 7.0]


def test_limiter_never_exceeds_the_limit_in_any_window():
    clock = ManualClock()
    limiter = SlidingWindowLimiter(5, 2.0, clock.as_clock())
    stamps = []
    for _ in range(40):
        limiter.acquire()
        stamps.append(clock.now())
        clock.t += 0.1
    for start in stamps:
        in_window = [s for s in stamps if start <= s < start + 2.0]
        assert len(in_window) <= 5


def test_block_for_pauses_every_caller():
    clock = ManualClock()
    limiter = SlidingWindowLimiter(100, 10.0, clock.as_clock())
    limiter.acquire()
    limiter.block_for(4.0)
    assert limiter.acquire() == pytest.approx(4.0)
    assert clock.now() == pytest.approx(4.0)


def test_limiter_refuses_non_positive_limits():
    with pytest.raises(ConfigError):
        SlidingWindowLimiter(0, 10.0)


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2024, 5, 6, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == pytest.approx(30.0)


def test_backoff_is_jittered_exponential_and_capped():
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=5.0)
    rng = random.Random(0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        values = [backoff_delay(attempt, policy, rng) for _ in range(50)]
        assert min(values) >= ceiling / 2 and max(values) <= ceiling
        assert len(set(values)) > 1  # jittered


def test_redact_masks_every_secret():
    assert redact("Bearer abc123 and abc123", [Secret("abc123"), None]) == "Bearer *** and ***"
    assert "abc" not in repr(Secret("abc")) and "abc" not in str(Secret("abc"))
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(Secret("abc"))


def response(status: int, body: object = None, headers: dict | None = None) -> requests.Response:
    out = requests.Response()
    out.status_code = status
    out._content = json.dumps(body or {}).encode()
    out.headers.update(headers or {})
    return out


class ScriptedSession:
    """Answers requests from a script: Response objects, or exceptions to raise."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs["headers"]))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def client(script, **policy):
    clock = ManualClock()
    session = ScriptedSession(script)
    api = ApiClient(
        session, "http://crm.test", token=Secret("tok-XYZ"),
        policy=RetryPolicy(backoff_base_s=1.0, backoff_max_s=8.0, **policy),
        clock=clock.as_clock(), seed=1,
    )
    return api, session, clock


def test_5xx_and_timeouts_are_retried_with_backoff_then_succeed():
    api, session, clock = client(
        [response(503), requests.ReadTimeout("slow"), response(502), response(200, {"ok": 1})]
    )
    got = api.request("POST", "/x", json_body={})
    assert got.status_code == 200 and len(session.calls) == 4
    assert len(clock.sleeps) == 3
    for attempt, slept in enumerate(clock.sleeps, start=1):
        ceiling = min(8.0, 2.0 ** (attempt - 1))
        assert ceiling / 2 <= slept <= ceiling
    assert all(h["Authorization"] == "Bearer tok-XYZ" for _, _, h in session.calls)


def test_retries_are_bounded_and_the_error_hides_the_token():
    api, session, _ = client([response(500, {"echo": "Bearer tok-XYZ"})] * 3, max_attempts=3)
    with pytest.raises(CrmError) as info:
        api.request("POST", "/x")
    assert len(session.calls) == 3
    assert "after 3 attempts" in str(info.value) and "HTTP 500" in str(info.value)
    assert "tok-XYZ" not in str(info.value)


def test_429_waits_retry_after_and_does_not_use_an_attempt():
    api, session, clock = client(
        [response(429, headers={"Retry-After": "7"})] * 3 + [response(200)], max_attempts=1
    )
    assert api.request("GET", "/x").status_code == 200
    assert clock.sleeps == [7.0, 7.0, 7.0]
    assert api.rate_limited == 3


def test_too_long_retry_after_stops():
    api, _, _ = client([response(429, headers={"Retry-After": "3600"})])
    with pytest.raises(CrmError, match="asked to wait 3600 s"):
        api.request("GET", "/x")


def test_429_storm_gives_up_after_the_budget():
    api, session, _ = client([response(429)] * 5, max_rate_limited=3)
    with pytest.raises(CrmError, match="rate limited 4 times in a row"):
        api.request("GET", "/x")
    assert len(session.calls) == 4


def test_connection_errors_raise_without_chaining_the_request():
    api, _, _ = client([requests.ConnectionError("refused")] * 2, max_attempts=2)
    with pytest.raises(CrmError) as info:
        api.request("GET", "/x")
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert "connection failed" in str(info.value)


def test_cancel_stops_before_the_next_attempt():
    api, session, _ = client([response(200)])
    api.cancel()
    with pytest.raises(CrmError, match="stopped"):
        api.request("GET", "/x")
    assert session.calls == []
