"""Benchmark the HubSpot push: 200,000 contacts to the fake HubSpot, then a 5 % delta re-run.

Run ``python -m benchmarks.bench_push`` (``--quick`` for 20,000 contacts). The fake server runs
in-process on 127.0.0.1 without rate limits and the client's limiter is raised, so the run
measures the push itself; the time the default client limit (190 requests per 10 s) would
impose on the same request counts is computed by driving the real limiter with a simulated
clock. Results go to ``benchmarks/results/push.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.fakes.data import change_scores, make_predictions
from benchmarks.fakes.hubspot import FakeHubSpot
from benchmarks.fakes.server import FakeServer
from serving.crm import HubSpotConfig, HubSpotSink, Ledger, push_predictions
from serving.crm.http import Secret
from serving.crm.ratelimit import ManualClock, SlidingWindowLimiter
from serving.crm.records import CRM_FIELDS

__all__ = ["run_push_benchmark", "implied_seconds", "main"]

RESULTS = Path(__file__).resolve().parent / "results" / "push.md"
TOKEN = "bench-token"
DEFAULT_CALLS, DEFAULT_WINDOW_S = 190, 10.0


def implied_seconds(requests: int, calls: int = DEFAULT_CALLS, window_s: float = DEFAULT_WINDOW_S):
    """Seconds the client limiter needs to let ``requests`` requests start (simulated clock)."""
    clock = ManualClock()
    limiter = SlidingWindowLimiter(calls, window_s, clock.as_clock())
    for _ in range(requests):
        limiter.acquire()
    return clock.now()


def run_push_benchmark(n: int = 200_000, changed: float = 0.05, workers: int = 4) -> dict:
    """Push ``n`` contacts, then re-push after ``changed`` of the scores moved.

    Returns:
        The measured figures (see :func:`write_results`).
    """
    predictions = make_predictions(n, seed=42)
    moved = change_scores(predictions, changed, seed=43)
    fake = FakeHubSpot(TOKEN)
    figures: dict = {"n": n, "changed": changed, "workers": workers}
    with FakeServer(fake) as server, tempfile.TemporaryDirectory() as tmp:
        config = HubSpotConfig(
            base_url=server.url, rate_limit_calls=1_000_000, workers=workers
        )
        with Ledger(Path(tmp) / "ledger.sqlite") as ledger:
            dry = push_predictions(predictions, HubSpotSink(config, None), ledger, dry_run=True)
            figures["dry_run_s"] = dry.seconds
            start = time.perf_counter()
            first = push_predictions(predictions, HubSpotSink(config, Secret(TOKEN)), ledger)
            figures["first_s"] = time.perf_counter() - start
            upserts_first = fake.upsert_requests
            start = time.perf_counter()
            second = push_predictions(moved, HubSpotSink(config, Secret(TOKEN)), ledger)
            figures["second_s"] = time.perf_counter() - start
            upserts_second = fake.upsert_requests - upserts_first
        held = fake.contacts_by("email")
    figures.update(
        first_requests=first.requests,
        first_upserts=upserts_first,
        first_setup=first.requests - upserts_first,
        first_sent=first.sent,
        second_requests=second.requests,
        second_upserts=upserts_second,
        second_sent=second.sent,
        second_changed=second.changed,
        contacts_held=len(held),
        max_batch=max(len(b) for b in fake.batches),
        duplicate_ids=sum(len(b) - len(set(b)) for b in fake.batches),
    )
    figures["first_implied_s"] = implied_seconds(first.requests)
    figures["second_implied_s"] = implied_seconds(second.requests)
    figures["call_ratio"] = second.requests / first.requests
    return figures


def write_results(figures: dict, path: Path = RESULTS) -> str:
    """Write the figures as Markdown and return the text."""
    f = figures
    ok_calls = f["first_upserts"] <= f["n"] / 100
    ok_ratio = f["call_ratio"] <= f["changed"]
    lines = [
        "# CRM push benchmark (HubSpot, fake server)",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/bench_push.py` on "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (shared machine; timings are indicative).",
        "",
        f"Setup: {f['n']:,} contacts, batch upsert with 100 inputs per call, {f['workers']} "
        "workers, fake HubSpot in the same process on 127.0.0.1 with no rate limit and the "
        "client limiter raised, so the wall-clock times measure the push itself. The last "
        "column is what the default client limit (190 requests per rolling 10 s) imposes on "
        "the same number of requests (time until the last request may start), from the real "
        "limiter driven by a simulated clock.",
        "",
        "| run | records sent | HTTP requests | of which upserts | wall clock | at 190 / 10 s |",
        "|---|---:|---:|---:|---:|---:|",
        f"| first push | {f['first_sent']:,} | {f['first_requests']:,} | {f['first_upserts']:,} "
        f"| {f['first_s']:.1f} s | {f['first_implied_s']:.0f} s |",
        f"| re-run, {f['changed']:.0%} of scores changed | {f['second_sent']:,} | "
        f"{f['second_requests']:,} | {f['second_upserts']:,} | {f['second_s']:.1f} s | "
        f"{f['second_implied_s']:.0f} s |",
        "",
        f"- Upsert calls for {f['n']:,} contacts: {f['first_upserts']:,} (target ≤ "
        f"{f['n'] // 100:,}: {'met' if ok_calls else 'NOT met'}). The first push also makes "
        f"{f['first_setup']} one-off set-up calls (reading and creating the property group and "
        f"the {len(CRM_FIELDS)} properties); later pushes skip them because the ledger "
        "remembers the set-up.",
        f"- Re-run after {f['changed']:.0%} of scores changed: {f['second_requests']:,} requests "
        f"= {f['call_ratio']:.2%} of the first run's {f['first_requests']:,} (target ≤ "
        f"{f['changed']:.0%}: {'met' if ok_ratio else 'NOT met'}); {f['second_changed']:,} "
        "records detected as changed, all others skipped by the delta check.",
        f"- Planning only (dry run: validation, rendering, fingerprints, ledger comparison) for "
        f"{f['n']:,} records: {f['dry_run_s']:.1f} s.",
        f"- Fake CRM afterwards: {f['contacts_held']:,} contacts, largest batch "
        f"{f['max_batch']} inputs, {f['duplicate_ids']} duplicate ids within a batch.",
        "",
    ]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 contacts instead of 200,000")
    parser.add_argument("-n", type=int, default=None, help="number of contacts")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    n = args.n or (20_000 if args.quick else 200_000)
    figures = run_push_benchmark(n, workers=args.workers)
    print(write_results(figures, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
