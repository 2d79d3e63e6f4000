"""A push process killed with SIGKILL mid-way, then re-run: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from benchmarks.fakes.data import make_predictions
from benchmarks.fakes.hubspot import FakeHubSpot
from benchmarks.fakes.server import FakeServer
from serving.crm import HubSpotConfig, Ledger, PushOptions, push_from_file
from serving.crm.records import render_field_strings, validate_predictions

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "pat-crash-test-token"

pytestmark = pytest.mark.slow


@pytest.fixture()
def fake():
    app = FakeHubSpot(TOKEN)
    with FakeServer(app) as server:
        app.url = server.url
        yield app


def write_predictions(tmp_path, n):
    preds = make_predictions(n, email_missing_every=50)
    consent = [(i % 17) != 5 for i in range(n)]
    preds["consent"] = consent
    path = tmp_path / "predictions.parquet"
    preds.to_parquet(path)
    return preds, path


def start_push(spec, tmp_path):
    env = dict(os.environ, CORECAST_HUBSPOT_TOKEN=TOKEN, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.serving.run_push", json.dumps(spec)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def expected(preds):
    """Properties the fake must hold, keyed by email: consenting members with an email."""
    keep = preds[preds["consent"] & preds["email"].notna()]
    fields = render_field_strings(validate_predictions(keep)).fillna("")
    fields.columns = ["corecast_" + c for c in fields.columns]
    fields.index = keep["email"].str.lower()
    return fields.to_dict("index")


def assert_crm_matches(fake, preds):
    held = fake.contacts_by("email")
    want = expected(preds)
    assert set(held) == set(want)  # nobody missing, no consent-false member pushed
    for email, props in want.items():
        assert {k: v for k, v in held[email].items() if k != "email"} == props
    for batch in fake.batches:
        assert len(batch) == len(set(batch)) and len(batch) <= 100


def rerun(path, ledger_path, url):
    options = PushOptions(ledger_path=ledger_path, hubspot=HubSpotConfig(base_url=url))
    os.environ["CORECAST_HUBSPOT_TOKEN"] = TOKEN
    try:
        return push_from_file(path, "hubspot", options)
    finally:
        del os.environ["CORECAST_HUBSPOT_TOKEN"]


def test_kill_while_the_crm_holds_an_unrecorded_batch(fake, tmp_path):
    preds, path = write_predictions(tmp_path, 700)
    ledger_path = tmp_path / "ledger.sqlite"
    reached, release = threading.Event(), threading.Event()

    def hold_third_batch(number):
        if number == 3:
            reached.set()
            release.wait(30)

    fake.on_upsert = hold_third_batch
    spec = {"predictions": str(path), "ledger": str(ledger_path), "url": fake.url, "workers": 1}
    proc = start_push(spec, tmp_path)
    try:
        assert reached.wait(60), proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    fake.on_upsert = None

    with Ledger(ledger_path, readonly=True) as ledger:
        key = f"hubspot:{fake.url}:contacts:email"
        before = ledger.read_state(key)
    counts = before["status"].value_counts().to_dict()
    assert counts["sent"] == 200  # batches 1 and 2 confirmed; batch 3 reached the CRM only
    sent_before = set(before.loc[before["status"] == "sent", "member_id"])
    pending_before = int((before["status"] == "pending").sum())
    batches_before = len(fake.batches)

    report = rerun(path, ledger_path, fake.url)
    assert report.sent == pending_before and report.unchanged == 200
    resent = {e for batch in fake.batches[batches_before:] for e in batch}
    sent_emails = {m + "@members.test" for m in sent_before}
    assert not resent & sent_emails  # only what was not confirmed is sent again
    assert_crm_matches(fake, preds)
    with Ledger(ledger_path, readonly=True) as ledger:
        final = ledger.read_state(key)
        history = ledger.history()
    deliverable = expected(preds)
    assert int((final["status"] == "sent").sum()) == len(deliverable)
    assert set(final.loc[final["status"] == "failed", "member_id"]) == set(
        preds.loc[preds["consent"] & preds["email"].isna(), "member_id"]
    )
    assert history["state"].tolist() == ["done", "interrupted"]


def test_random_kills_then_rerun_converge(fake, tmp_path):
    preds, path = write_predictions(tmp_path, 1500)
    ledger_path = tmp_path / "ledger.sqlite"
    fake.upsert_delay_s = 0.05
    rng = random.Random(11)
    first_batch = threading.Event()
    fake.on_upsert = lambda number: first_batch.set()
    spec = {"predictions": str(path), "ledger": str(ledger_path), "url": fake.url, "workers": 2}
    for _ in range(3):
        first_batch.clear()
        proc = start_push(spec, tmp_path)
        try:
            for _ in range(1200):  # until a batch arrives or the push ends (nothing left)
                if first_batch.wait(0.05) or proc.poll() is not None:
                    break
            assert first_batch.is_set() or proc.poll() == 0, proc.stderr.read().decode()[-2000:]
            threading.Event().wait(rng.uniform(0.0, 0.25))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            threading.Event().wait(0.2)  # let answers to the killed process drain
        finally:
            if proc.poll() is None:
                proc.kill()
    fake.upsert_delay_s = 0.0
    with sqlite3.connect(ledger_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    report = rerun(path, ledger_path, fake.url)
    assert report.pending == 0
    assert_crm_matches(fake, preds)
    with Ledger(ledger_path, readonly=True) as ledger:
        states = ledger.history()["state"].tolist()
        final = ledger.read_state(f"hubspot:{fake.url}:contacts:email")
    assert states[0] == "done" and "interrupted" in states
    assert int((final["status"] == "sent").sum()) == len(expected(preds))
    assert not (final["status"] == "pending").any()
