"""Push predictions to a CRM sink through the delivery ledger: delta, restartable, observable.

The engine (:func:`push_predictions`) is the same for every sink:

1. validate the predictions (:class:`~features.errors.ContractError` on a broken table) and
   drop members without consent (when a ``consent`` column is present);
2. render each member's payload for the sink and fingerprint its content: every payload field
   but the sink's ``volatile_columns`` (``scored_at``, ``as_of``, the model versions and the run
   id by default, see :attr:`PushOptions.volatile_fields`), which change on every scoring run;
   a record that is sent still carries them;
3. plan against the ledger: ``new`` (never seen), ``changed`` (content differs from the last
   confirmed one), ``retry`` (still ``pending`` after a crash, or ``failed`` last time) are sent;
   ``unchanged`` records are skipped unless ``full=True``;
4. dry run: stop here and report counts and a sample — nothing is sent and nothing is written;
5. write every record to send as ``pending`` (one transaction), refuse the ones the sink cannot
   take (e.g. no email → ``failed``), then send batches (optionally several in flight) and
   record each batch's per-record outcome as soon as it arrives.

A hard sink error (token refused, daily quota, outage after retries) stops the push with a
:class:`~features.errors.CrmError` that says how many records were sent and how many are still
pending; re-running sends exactly those that were not confirmed.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from requests.adapters import HTTPAdapter

from features.errors import ConfigError, CorecastError, CrmError, CrmRefused, DeliveryFailed
from serving.crm.base import BatchOutcome, Sink
from serving.crm.csvsink import CsvConfig, CsvSink
from serving.crm.http import PushCancelled, Secret
from serving.crm.hubspot import HubSpotConfig, HubSpotSink
from serving.crm.ledger import Ledger, default_ledger_path
from serving.crm.ratelimit import Clock
from serving.crm.records import (
    DEFAULT_VOLATILE_FIELDS,
    MEMBER_KEY,
    RECORD_KEY,
    fingerprint_content,
    fingerprint_scheme,
    load_predictions,
    select_consenting,
    validate_predictions,
    validate_volatile_fields,
)
from serving.crm.salesforce import SalesforceConfig, SalesforceSink
from serving.crm.webhook import WebhookConfig, WebhookSink
from serving.delivery import DEFAULT_MIN_DELIVERED_SHARE

__all__ = [
    "SINK_KINDS",
    "check_delivery",
    "PushOptions",
    "PushReport",
    "plan_push",
    "push_predictions",
    "build_sink",
    "push_from_file",
]

logger = logging.getLogger("corecast.crm")

SINK_KINDS = ("hubspot", "salesforce", "webhook", "csv")
CHANGE_KINDS = ("new", "changed", "retry", "unchanged")
FINGERPRINT_META_PREFIX = "fingerprint:"
"""Ledger meta key prefix (``fingerprint:<sink key>``) of the sink's fingerprint scheme."""


@dataclass(frozen=True)
class PushOptions:
    """Everything the command line and the flows can set for a push.

    Attributes:
        ledger_path: Delivery ledger file (default ``corecast_home() / "ledger.sqlite"``).
        full: Send every record, even those unchanged since the last confirmed push.
        dry_run: Plan only: report what would be sent; send and write nothing.
        sample_size: Rows of the plan shown in :attr:`PushReport.sample`.
        volatile_fields: Fields that change on every scoring run and so do not count as a
            change: a record whose other fields are unchanged is skipped, and a record that is
            sent carries their current values. Default ``("scored_at", "as_of",
            "model_versions", "run_id")`` (``run_id`` exists in webhook records only); ``()``
            makes every field count. Any canonical field but ``member_id`` may be named.
        hubspot: HubSpot settings.
        salesforce: Salesforce settings.
        webhook: Webhook settings.
        csv: CSV file settings.
        min_delivered_share: A push that planned records and delivered a smaller share of them
            fails (:class:`~features.errors.DeliveryFailed`); one that delivered at least this
            share but not everything is a *partial* delivery (reported, exit code 3 on the
            command line). Default 0.9: a few refused rows (a malformed email) are partial, a
            rejected batch is a failure.

    Raises:
        ConfigError: ``volatile_fields`` names an unknown field (or ``member_id``), or
            ``min_delivered_share`` is outside [0, 1].
    """

    ledger_path: Path | None = None
    full: bool = False
    dry_run: bool = False
    sample_size: int = 10
    volatile_fields: tuple[str, ...] = DEFAULT_VOLATILE_FIELDS
    hubspot: HubSpotConfig = field(default_factory=HubSpotConfig)
    salesforce: SalesforceConfig = field(default_factory=SalesforceConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    csv: CsvConfig = field(default_factory=CsvConfig)
    min_delivered_share: float = DEFAULT_MIN_DELIVERED_SHARE

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "volatile_fields", validate_volatile_fields(self.volatile_fields)
        )
        if not 0.0 <= self.min_delivered_share <= 1.0:
            raise ConfigError(
                f"--min-delivered-share must be in [0, 1], got {self.min_delivered_share!r}"
            )

    def without_fields(self, kind: str, fields) -> PushOptions:
        """These options with ``fields`` left out of the payload of every sink (and so out of
        the change fingerprint of the delta push).

        Raises:
            ConfigError: Fields are named for the webhook sink, whose payload is fixed.
        """
        return self.with_mapping(kind, {name: None for name in fields or ()}, "omit_fields")

    def with_mapping(self, kind: str, mapping, what: str = "field_names") -> PushOptions:
        """These options with ``mapping`` (field -> CRM property, column or field name;
        ``None`` leaves the field out) over the sinks' defaults.

        Raises:
            ConfigError: A mapping for the webhook sink, whose payload is fixed.
        """
        mapping = dict(mapping or {})
        if not mapping:
            return self
        if kind == "webhook":
            raise ConfigError(f"{what}: webhook payloads are fixed; it applies to csv, "
                              "hubspot and salesforce")
        return replace(
            self,
            csv=replace(self.csv, columns={**(self.csv.columns or {}), **mapping}),
            hubspot=replace(self.hubspot, properties={**(self.hubspot.properties or {}),
                                                      **mapping}),
            salesforce=replace(self.salesforce, fields={**(self.salesforce.fields or {}),
                                                        **mapping}),
        )

    def with_crm_url(self, kind: str, url: str | None) -> PushOptions:
        """These options with ``url`` as the address of the ``kind`` sink (HubSpot API base,
        Salesforce instance or webhook receiver); unchanged without a URL or for csv."""
        if not url:
            return self
        if kind == "hubspot":
            return replace(self, hubspot=replace(self.hubspot, base_url=url))
        if kind == "salesforce":
            return replace(self, salesforce=replace(self.salesforce, instance_url=url))
        if kind == "webhook":
            return replace(self, webhook=replace(self.webhook, url=url))
        return self


@dataclass(frozen=True)
class PushReport:
    """What a push did (or, for a dry run, would do).

    Attributes:
        sink: Ledger key of the sink.
        kind: Sink kind.
        dry_run: Whether this was a dry run.
        full: Whether unchanged records were sent too.
        total: Rows in the predictions.
        refused_consent: Rows not pushed because ``consent`` is not true.
        new: Members never recorded for this sink.
        changed: Members whose payload differs from the last confirmed one.
        retried: Members still pending (interrupted push) or failed last time.
        unchanged: Members whose payload equals the last confirmed one.
        to_send: Records planned for sending.
        rejected: Planned records the sink refuses before sending (e.g. no email).
        sent: Records the sink confirmed.
        failed: Records refused (rejected ones included); see the dead-letter list.
        pending: Planned records left pending (push stopped early).
        requests: HTTP requests (or files) made.
        seconds: Wall-clock duration.
        failure_reasons: Most frequent failure reasons with their counts.
        push_id: Ledger id of the push (``None`` for a dry run).
        ledger_path: The ledger used.
        sample: A few planned records (member_id, change, reject reason, payload).
        volatile_columns: Payload columns left out of the change fingerprint.
        fingerprint_changed: The sink's records were last fingerprinted with other volatile
            columns (or by a version that fingerprinted every column), so records already sent
            count as ``changed`` once.
    """

    sink: str
    kind: str
    dry_run: bool
    full: bool
    total: int
    refused_consent: int
    new: int
    changed: int
    retried: int
    unchanged: int
    to_send: int
    rejected: int
    sent: int
    failed: int
    pending: int
    requests: int
    seconds: float
    failure_reasons: dict[str, int]
    push_id: str | None
    ledger_path: str
    sample: pd.DataFrame = field(repr=False, compare=False)
    volatile_columns: tuple[str, ...] = ()
    fingerprint_changed: bool = False

    def summary(self) -> str:
        """A few human-readable lines for the command line."""
        head = "DRY RUN — nothing sent. " if self.dry_run else ""
        lines = [
            f"{head}{self.kind} ({self.sink}): {self.total} predictions, "
            f"{self.refused_consent} refused for consent",
            f"plan: {self.new} new, {self.changed} changed, {self.retried} to retry, "
            f"{self.unchanged} unchanged{' (sent anyway: full push)' if self.full else ''} "
            f"→ {self.to_send} to send, {self.rejected} refused before sending",
        ]
        if self.fingerprint_changed:
            ignored = ", ".join(self.volatile_columns) or "none"
            lines.append(
                f"note: the change fingerprint of this sink changed (volatile columns now: "
                f"{ignored}); records sent before count as changed this once"
            )
        if not self.dry_run:
            lines.append(
                f"result: {self.sent} sent, {self.failed} failed, {self.pending} pending, "
                f"{self.requests} requests in {self.seconds:.1f} s"
            )
        for reason, count in self.failure_reasons.items():
            lines.append(f"  {count} × {reason}")
        return "\n".join(lines)


def plan_push(
    member_ids: pd.Series, hashes: pd.Series, state: pd.DataFrame, *, full: bool = False
) -> pd.DataFrame:
    """Classify every record against the ledger state of one sink (vectorised).

    Args:
        member_ids: Member id per record.
        hashes: Content fingerprint per record (same index).
        state: :meth:`Ledger.read_state` of the sink.
        full: Send unchanged records too.

    Returns:
        Frame (same index) with ``change`` (new / changed / retry / unchanged) and ``send``.
    """
    indexed = state.set_index("member_id")
    status = member_ids.map(indexed["status"])
    sent_hash = member_ids.map(indexed["sent_hash"])
    change = np.select(
        [
            status.isna().to_numpy(),
            status.isin(["pending", "failed"]).to_numpy(),
            (sent_hash.isna() | (sent_hash != hashes)).to_numpy(),
        ],
        ["new", "retry", "changed"],
        default="unchanged",
    )
    change = pd.Series(change, index=member_ids.index, dtype="str")
    send = pd.Series(True, index=member_ids.index) if full else change != "unchanged"
    return pd.DataFrame({"change": change, "send": send.astype(bool)})


def _batches(frame: pd.DataFrame, size: int | None) -> Iterator[pd.DataFrame]:
    if size is None or size >= len(frame):
        if len(frame):
            yield frame
        return
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


@dataclass
class _Tally:
    sent: int = 0
    failed: int = 0
    reasons: list[np.ndarray] = field(default_factory=list)
    batches: int = 0


#: An email address quoted in a server's message.
_EMAIL_IN_TEXT = re.compile(r"[^@\s\"'<>,;:()\[\]]+@[^@\s\"'<>,;:()\[\]]+\.[A-Za-z0-9-]+")


def without_emails(reasons: np.ndarray) -> np.ndarray:
    """Failure reasons with any quoted email replaced by ``<email>``: a dead letter is kept by
    member id, and a member's address has no business in the ledger's reasons."""
    out = np.asarray(reasons, dtype=object).copy()
    for i, reason in enumerate(out):
        if isinstance(reason, str) and "@" in reason:
            out[i] = _EMAIL_IN_TEXT.sub("<email>", reason)
    return out


def _record(ledger: Ledger, sink: Sink, push_id: str, outcome: BatchOutcome, tally: _Tally):
    outcome = replace(outcome, reasons=without_emails(outcome.reasons))
    ledger.record_outcomes(
        sink.key, push_id, outcome.member_ids, outcome.statuses, outcome.reasons, outcome.crm_ids
    )
    tally.sent += outcome.sent
    tally.failed += outcome.failed
    tally.batches += 1
    if outcome.failed:
        tally.reasons.append(outcome.reasons[outcome.statuses == "failed"])


def _deliver(
    frame: pd.DataFrame, sink: Sink, ledger: Ledger, push_id: str, tally: _Tally
) -> None:
    """Send every batch, recording outcomes in the ledger from this (the calling) thread."""
    total_batches = -(-len(frame) // sink.batch_size) if sink.batch_size else 1
    step = max(1, total_batches // 10)
    batches = _batches(frame, sink.batch_size)
    if sink.workers <= 1:
        for batch in batches:
            _record(ledger, sink, push_id, sink.send_batch(batch), tally)
            if tally.batches % step == 0:
                logger.info("%s: %d/%d batches done", sink.key, tally.batches, total_batches)
        return
    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=sink.workers, thread_name_prefix="crm-push") as pool:
        in_flight: set[Future] = set()
        exhausted = False
        while True:
            while error is None and not exhausted and len(in_flight) < 2 * sink.workers:
                batch = next(batches, None)
                if batch is None:
                    exhausted = True
                    break
                in_flight.add(pool.submit(sink.send_batch, batch))
            if not in_flight:
                break
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    outcome = future.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after draining
                    first = error is None
                    if first or (isinstance(error, PushCancelled) and not isinstance(
                        exc, PushCancelled
                    )):
                        error = exc
                    sink.cancel()
                    continue
                _record(ledger, sink, push_id, outcome, tally)
                if tally.batches % step == 0:
                    logger.info("%s: %d/%d batches done", sink.key, tally.batches, total_batches)
    resume = getattr(sink, "resume", None)
    if resume is not None:
        resume()  # every worker has stopped: the sink may serve a later push
    if error is not None:
        raise error


def _scheme_changed(stored: str | None, scheme: str, state: pd.DataFrame) -> bool:
    """Whether the sink's confirmed records were fingerprinted with another scheme.

    A ledger without a stored scheme but with confirmed records was written before volatile
    fields existed, when every payload column was fingerprinted (scheme ``excluded=``).
    """
    if stored is None:
        if not state["sent_hash"].notna().any():
            return False
        stored = fingerprint_scheme(())
    return stored != scheme


def _prepare_once(sink: Sink, ledger: Ledger) -> None:
    """Run :meth:`Sink.prepare` unless the ledger remembers it done with the same fingerprint."""
    fingerprint = getattr(sink, "setup_fingerprint", None)
    key = f"setup:{sink.key}"
    if fingerprint is not None and ledger.get_meta(key) == fingerprint:
        return
    sink.prepare()
    if fingerprint is not None:
        ledger.set_meta(key, fingerprint)


@dataclass(frozen=True)
class _Records:
    """The predictions as one sink takes them, fingerprinted (phases 1 and 2 of a push).

    Attributes:
        total: Rows in the predictions.
        refused_consent: Rows left out because ``consent`` is not true.
        rendered: The sink's payloads of the consenting members (with the member and record
            keys).
        hashes: Content fingerprint per payload (same index).
        rejects: Why the sink refuses a payload before sending, missing when it takes it.
        volatile: Payload columns left out of the fingerprint.
        scheme: The fingerprint scheme (:func:`fingerprint_scheme` of ``volatile``).
        scheme_key: Ledger meta key under which the sink's scheme is kept.
    """

    total: int
    refused_consent: int
    rendered: pd.DataFrame
    hashes: pd.Series
    rejects: pd.Series
    volatile: tuple[str, ...]
    scheme: str
    scheme_key: str


@dataclass(frozen=True)
class _Plan:
    """The ledger's verdict on every record (phase 3 of a push).

    Attributes:
        frame: :func:`plan_push` of the records (``change`` and ``send``).
        rescheme: The sink's confirmed records were fingerprinted with another scheme.
    """

    frame: pd.DataFrame
    rescheme: bool


@dataclass(frozen=True)
class _Run:
    """How a push was asked for and what it started from (for its report)."""

    full: bool
    dry_run: bool
    sample_size: int
    started: float
    requests_before: int


@dataclass(frozen=True)
class _Delivered:
    """What the sending phase did: the outcome tally, the ledger push id, records left pending."""

    tally: _Tally
    push_id: str | None
    pending: int


def _prepare_records(predictions: pd.DataFrame, sink: Sink, source: str) -> _Records:
    """Validate, keep consenting members, render and fingerprint the payloads."""
    frame = validate_predictions(predictions, source)
    pushable, refused = select_consenting(frame)
    rendered = sink.render(pushable)
    volatile = tuple(c for c in getattr(sink, "volatile_columns", ()) if c in rendered.columns)
    return _Records(
        total=len(frame),
        refused_consent=refused,
        rendered=rendered,
        hashes=fingerprint_content(rendered, volatile),
        rejects=sink.reject_reasons(rendered),
        volatile=volatile,
        scheme=fingerprint_scheme(volatile),
        scheme_key=f"{FINGERPRINT_META_PREFIX}{sink.key}",
    )


def _make_plan(records: _Records, sink: Sink, ledger: Ledger, full: bool) -> _Plan:
    """Classify the records against the sink's ledger state as it is now."""
    state = ledger.read_state(sink.key)
    rescheme = _scheme_changed(ledger.get_meta(records.scheme_key), records.scheme, state)
    frame = plan_push(records.rendered[MEMBER_KEY], records.hashes, state, full=full)
    return _Plan(frame=frame, rescheme=rescheme)


def _plan_sample(records: _Records, plan: _Plan, size: int) -> pd.DataFrame:
    """The first ``size`` records planned for sending: ids, change, reject reason, payload."""
    to_send = plan.frame["send"].to_numpy()
    rendered = records.rendered
    return pd.concat(
        [
            rendered.loc[to_send, [MEMBER_KEY, RECORD_KEY]].rename(
                columns={MEMBER_KEY: "member_id", RECORD_KEY: "record_id"}
            ),
            plan.frame.loc[to_send, ["change"]],
            records.rejects.loc[to_send].rename("reject_reason"),
            rendered.loc[to_send].drop(columns=[MEMBER_KEY, RECORD_KEY]),
        ],
        axis=1,
    ).head(size).reset_index(drop=True)


def _push_report(
    records: _Records, plan: _Plan, delivered: _Delivered, sink: Sink, ledger: Ledger, run: _Run
) -> PushReport:
    """The report of a push (or of a dry run, with an empty tally)."""
    counts = plan.frame["change"].value_counts()
    to_send = plan.frame["send"].to_numpy()
    refused_here = to_send & records.rejects.notna().to_numpy()
    tally = delivered.tally
    reasons = (
        pd.Series(np.concatenate(tally.reasons)).value_counts().head(10)
        if tally.reasons
        else records.rejects[refused_here].value_counts().head(10)
    )
    return PushReport(
        sink=sink.key,
        kind=sink.kind,
        dry_run=run.dry_run,
        full=run.full,
        total=records.total,
        refused_consent=records.refused_consent,
        new=int(counts.get("new", 0)),
        changed=int(counts.get("changed", 0)),
        retried=int(counts.get("retry", 0)),
        unchanged=int(counts.get("unchanged", 0)),
        to_send=int(to_send.sum()),
        rejected=int(refused_here.sum()),
        sent=tally.sent,
        failed=tally.failed,
        pending=delivered.pending,
        requests=sink.requests_made - run.requests_before,
        seconds=time.monotonic() - run.started,
        failure_reasons={str(k): int(v) for k, v in reasons.items()},
        push_id=delivered.push_id,
        ledger_path=str(ledger.path),
        sample=_plan_sample(records, plan, run.sample_size),
        volatile_columns=records.volatile,
        fingerprint_changed=plan.rescheme,
    )


def _begin_push(records: _Records, send: np.ndarray, sink: Sink, ledger: Ledger) -> str:
    """Open a push in the ledger, mark the records to send ``pending`` and keep the scheme."""
    push_id = ledger.begin_push(sink.key, int(send.sum()))
    ledger.mark_pending(
        sink.key, push_id, records.rendered.loc[send, MEMBER_KEY], records.hashes[send]
    )
    if ledger.get_meta(records.scheme_key) != records.scheme:
        ledger.set_meta(records.scheme_key, records.scheme)
    return push_id


def _fail_refused(
    records: _Records, refused: np.ndarray, sink: Sink, ledger: Ledger, push_id: str,
    tally: _Tally,
) -> None:
    """Record the planned records the sink refuses before sending as ``failed``."""
    if not refused.any():
        return
    outcome = BatchOutcome(
        records.rendered.loc[refused, MEMBER_KEY].to_numpy(dtype=object),
        np.full(int(refused.sum()), "failed", dtype=object),
        records.rejects[refused].to_numpy(dtype=object),
    )
    ledger.record_outcomes(
        sink.key, push_id, outcome.member_ids, outcome.statuses, outcome.reasons
    )
    tally.failed += outcome.failed
    tally.reasons.append(outcome.reasons)


def _deliver_or_stop(
    deliver: pd.DataFrame, planned: int, sink: Sink, ledger: Ledger, push_id: str,
    tally: _Tally,
) -> None:
    """Send the records; on any error close the push as ``stopped`` and say what is pending.

    Raises:
        CrmRefused: The CRM refused a request (never retried).
        CrmError: Any other corecast error (an outage the flow may retry).
    """
    try:
        if len(deliver):
            _prepare_once(sink, ledger)
            _deliver(deliver, sink, ledger, push_id, tally)
    except BaseException as exc:
        pending = planned - tally.sent - tally.failed
        message = str(exc) if isinstance(exc, CorecastError) else type(exc).__name__
        ledger.finish_push(
            push_id, "stopped", sent=tally.sent, failed=tally.failed, message=message
        )
        if isinstance(exc, CorecastError):
            # a request the CRM refused stays refused (never retried); anything else is
            # an outage the flow may retry
            kind = CrmRefused if isinstance(exc, CrmRefused) else CrmError
            raise kind(
                f"{message} [push to {sink.key} stopped: {tally.sent} sent, {tally.failed} "
                f"failed, {pending} still pending in ledger {ledger.path}; re-run to send "
                "the pending records]"
            ) from exc
        raise


def _send_planned(records: _Records, plan: _Plan, sink: Sink, ledger: Ledger) -> _Delivered:
    """Write the planned records as pending, fail the refused ones, send the others and close
    the push (phase 5; the caller holds the sink's ledger lock)."""
    send = plan.frame["send"].to_numpy()
    refused = send & records.rejects.notna().to_numpy()
    push_id = _begin_push(records, send, sink, ledger)
    tally = _Tally()
    _fail_refused(records, refused, sink, ledger, push_id, tally)
    deliver = records.rendered.loc[send & ~refused]
    logger.info(
        "%s: %d to send (%d refused before sending, %d unchanged skipped)",
        sink.key, len(deliver), int(refused.sum()), int((~send).sum()),
    )
    planned = int(send.sum())
    _deliver_or_stop(deliver, planned, sink, ledger, push_id, tally)
    ledger.finish_push(push_id, "done", sent=tally.sent, failed=tally.failed)
    return _Delivered(tally=tally, push_id=push_id, pending=planned - tally.sent - tally.failed)


def push_predictions(
    predictions: pd.DataFrame,
    sink: Sink,
    ledger: Ledger,
    *,
    full: bool = False,
    dry_run: bool = False,
    sample_size: int = 10,
    source: str = "<predictions>",
) -> PushReport:
    """Push predictions to one sink through the delivery ledger (see the module docstring).

    A record counts as changed when its content differs from the last confirmed one; the sink's
    ``volatile_columns`` (set from :attr:`PushOptions.volatile_fields`) are left out of that
    comparison but sent with every record that is sent.

    Args:
        predictions: Predictions table (see :data:`~serving.columns.PUSH_COLUMNS`).
        sink: Where to send (:func:`build_sink`).
        ledger: Delivery ledger (opened read-only is enough for a dry run).
        full: Send unchanged records too.
        dry_run: Only plan; send nothing, write nothing.
        sample_size: Planned records to include in the report.
        source: Name of the predictions (for error messages).

    Returns:
        The push report.

    Raises:
        ContractError: The predictions break the contract.
        CrmError: The sink stopped the push; the message gives sent / pending counts.
    """
    run = _Run(
        full=full, dry_run=dry_run, sample_size=sample_size, started=time.monotonic(),
        requests_before=sink.requests_made,
    )
    records = _prepare_records(predictions, sink, source)
    if dry_run:
        plan = _make_plan(records, sink, ledger, full)
        return _push_report(records, plan, _Delivered(_Tally(), None, 0), sink, ledger, run)
    with ledger.lock(sink.key):
        # plan again under the lock: another push may just have finished
        plan = _make_plan(records, sink, ledger, full)
        delivered = _send_planned(records, plan, sink, ledger)
        return _push_report(records, plan, delivered, sink, ledger, run)


def _secret_from_env(variable: str, required: bool, what: str) -> Secret | None:
    value = os.environ.get(variable, "").strip()
    if value:
        return Secret(value)
    if required:
        raise ConfigError(f"{what}: environment variable {variable} is not set")
    return None


def _session(workers: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(4, workers), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def build_sink(
    kind: str,
    options: PushOptions | None = None,
    *,
    session: requests.Session | None = None,
    clock: Clock | None = None,
    require_credentials: bool = True,
    seed: int | None = None,
) -> Sink:
    """Build a sink from options and the environment.

    The sink leaves ``options.volatile_fields`` out of its change fingerprint.

    Args:
        kind: ``hubspot``, ``salesforce``, ``webhook`` or ``csv``.
        options: Push options (defaults when ``None``).
        session: HTTP session to use (a pooled new one when ``None``).
        clock: Time source for rate limiting, backoff and polling (tests).
        require_credentials: Fail when the token / secret is missing (dry runs pass ``False``).
        seed: Seed of the backoff jitter.

    Raises:
        ConfigError: Unknown kind, or a required setting or credential is missing.
    """
    options = options or PushOptions()
    volatile = options.volatile_fields
    if kind == "hubspot":
        cfg = options.hubspot
        token = _secret_from_env(cfg.token_env, require_credentials, "HubSpot")
        return HubSpotSink(
            cfg, token, session=session or _session(cfg.workers), clock=clock, seed=seed,
            volatile_fields=volatile,
        )
    if kind == "salesforce":
        cfg = options.salesforce
        url = cfg.instance_url or os.environ.get(cfg.instance_url_env, "").strip()
        if not url:
            raise ConfigError(
                f"Salesforce: set the instance URL in the options or in {cfg.instance_url_env}"
            )
        token = _secret_from_env(cfg.token_env, require_credentials, "Salesforce")
        return SalesforceSink(
            cfg, url, token, session=session or _session(cfg.workers), clock=clock, seed=seed,
            volatile_fields=volatile,
        )
    if kind == "webhook":
        cfg = options.webhook
        url = cfg.url or os.environ.get(cfg.url_env, "").strip()
        if not url:
            raise ConfigError(f"Webhook: set the URL in the options or in {cfg.url_env}")
        secret = _secret_from_env(cfg.secret_env, require_credentials, "Webhook")
        return WebhookSink(
            cfg, url, secret, session=session or _session(cfg.workers), clock=clock, seed=seed,
            volatile_fields=volatile,
        )
    if kind == "csv":
        return CsvSink(options.csv, volatile_fields=volatile)
    raise ConfigError(f"unknown sink {kind!r}; choose one of {', '.join(SINK_KINDS)}")


def push_from_file(
    path: str | Path,
    kind: str,
    options: PushOptions | None = None,
    *,
    session: requests.Session | None = None,
    clock: Clock | None = None,
) -> PushReport:
    """Load a predictions file and push it (what ``corecast push`` runs).

    Args:
        path: ``predictions.parquet`` or ``.csv``.
        kind: Sink kind (see :func:`build_sink`).
        options: Push options (``full``, ``dry_run``, ledger path, sink settings).
        session: HTTP session (tests).
        clock: Time source (tests).

    Returns:
        The push report.
    """
    options = options or PushOptions()
    predictions = load_predictions(path)
    sink = build_sink(
        kind, options, session=session, clock=clock, require_credentials=not options.dry_run
    )
    ledger_path = options.ledger_path or default_ledger_path()
    with Ledger(ledger_path, readonly=options.dry_run) as ledger:
        return push_predictions(
            predictions,
            sink,
            ledger,
            full=options.full,
            dry_run=options.dry_run,
            sample_size=options.sample_size,
            source=str(path),
        )


def check_delivery(report: PushReport, min_delivered_share: float) -> str | None:
    """Judge what a push delivered.

    Returns:
        ``None`` when everything planned was delivered (or nothing was planned, or a dry run);
        a one-line warning for a partial delivery (at least ``min_delivered_share`` sent).

    Raises:
        DeliveryFailed: Less than ``min_delivered_share`` of the planned records was sent.
    """
    if report.dry_run or report.to_send == 0 or report.sent == report.to_send:
        return None
    share = report.sent / report.to_send  # nothing delivered always fails, whatever the share
    top = list(report.failure_reasons.items())[:3]
    reasons = "; ".join(f"{reason} ({count})" for reason, count in top)
    counts = (
        f"{report.sent} of {report.to_send} planned records delivered to {report.kind} "
        f"({share:.1%}), {report.failed} refused, {report.pending} pending"
    )
    where = f"dead letters: corecast push --status --ledger {report.ledger_path}"
    if report.sent == 0 or share < min_delivered_share:
        raise DeliveryFailed(
            f"push failed: {counts}, below --min-delivered-share {min_delivered_share:g}"
            + (f"; most frequent reasons: {reasons}" if reasons else "") + f"; {where}"
        )
    return f"partial delivery: {counts}; {where}"
