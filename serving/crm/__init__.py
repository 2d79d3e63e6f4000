"""Reliable CRM push of batch predictions: HubSpot, Salesforce, signed webhooks and CSV files.

Every push goes through a SQLite delivery ledger, so it sends only what changed since the last
confirmed push (delta), survives a crash at any point (a re-run sends what was not confirmed),
and keeps a dead-letter list of records the CRM refused. See ``docs/crm.md``.

Outreach outcomes are read back with :func:`pull_from_options` (what ``corecast pull`` runs).

Main entry points: :func:`push_from_file` (what ``corecast push`` runs), :func:`push_predictions`
(the engine, with sink and ledger passed in), :func:`build_sink`, :func:`read_push_status` and
:func:`read_dead_letters`.
"""

from serving.columns import PUSH_COLUMNS
from serving.crm.base import BatchOutcome, Sink
from serving.crm.csvsink import CsvConfig, CsvSink
from serving.crm.http import RetryPolicy, Secret
from serving.crm.hubspot import HubSpotConfig, HubSpotSink
from serving.crm.ledger import (
    Ledger,
    default_ledger_path,
    read_dead_letters,
    read_push_history,
    read_push_status,
)
from serving.crm.pull import PULL_SOURCES, PullOptions, PullReport, pull_from_options
from serving.crm.push import (
    SINK_KINDS,
    PushOptions,
    PushReport,
    build_sink,
    check_delivery,
    plan_push,
    push_from_file,
    push_predictions,
)
from serving.crm.ratelimit import Clock, SlidingWindowLimiter
from serving.crm.records import (
    DEFAULT_VOLATILE_FIELDS,
    load_predictions,
    validate_predictions,
)
from serving.crm.salesforce import SalesforceConfig, SalesforceSink
from serving.crm.webhook import WebhookConfig, WebhookSink

__all__ = [
    "BatchOutcome",
    "Clock",
    "CsvConfig",
    "CsvSink",
    "DEFAULT_VOLATILE_FIELDS",
    "HubSpotConfig",
    "HubSpotSink",
    "Ledger",
    "PUSH_COLUMNS",
    "PULL_SOURCES",
    "PullOptions",
    "PullReport",
    "PushOptions",
    "PushReport",
    "RetryPolicy",
    "SINK_KINDS",
    "SalesforceConfig",
    "SalesforceSink",
    "Secret",
    "Sink",
    "SlidingWindowLimiter",
    "WebhookConfig",
    "WebhookSink",
    "build_sink",
    "default_ledger_path",
    "load_predictions",
    "plan_push",
    "pull_from_options",
    "push_from_file",
    "check_delivery",
    "push_predictions",
    "read_dead_letters",
    "read_push_history",
    "read_push_status",
    "validate_predictions",
]
