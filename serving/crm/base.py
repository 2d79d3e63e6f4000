"""What every CRM sink provides to the push engine, and the outcome of one batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

__all__ = ["HttpSinkMixin", "Sink", "BatchOutcome"]


@dataclass(frozen=True)
class BatchOutcome:
    """What the sink said about each record of one batch.

    Attributes:
        member_ids: Member ids of the batch.
        statuses: ``"sent"`` or ``"failed"`` per record (``"pending"`` = no answer, try again).
        reasons: Failure reason per record (``None`` when sent).
        crm_ids: Record id in the CRM when the sink returned one.
    """

    member_ids: np.ndarray
    statuses: np.ndarray
    reasons: np.ndarray
    crm_ids: np.ndarray | None = None

    @classmethod
    def all_sent(
        cls, member_ids: Sequence[str], crm_ids: Sequence[str | None] | None = None
    ) -> BatchOutcome:
        """Every record of the batch was accepted."""
        ids = np.asarray(member_ids, dtype=object)
        return cls(
            ids,
            np.full(len(ids), "sent", dtype=object),
            np.full(len(ids), None, dtype=object),
            None if crm_ids is None else np.asarray(crm_ids, dtype=object),
        )

    @classmethod
    def all_failed(cls, member_ids: Sequence[str], reason: str) -> BatchOutcome:
        """Every record of the batch was refused for the same reason."""
        ids = np.asarray(member_ids, dtype=object)
        return cls(
            ids,
            np.full(len(ids), "failed", dtype=object),
            np.full(len(ids), reason, dtype=object),
        )

    @property
    def sent(self) -> int:
        """Number of records confirmed."""
        return int((self.statuses == "sent").sum())

    @property
    def failed(self) -> int:
        """Number of records refused."""
        return int((self.statuses == "failed").sum())


@runtime_checkable
class Sink(Protocol):
    """A destination for predictions (HubSpot, Salesforce, a webhook, a CSV file).

    Attributes:
        kind: ``hubspot``, ``salesforce``, ``webhook`` or ``csv``.
        key: Ledger key: identifies the destination (never contains a secret).
        batch_size: Records per :meth:`send_batch` call (``None`` = everything in one call).
        workers: How many batches may be in flight at once.
        setup_fingerprint: Identifies what :meth:`prepare` sets up (e.g. the property mapping);
            once a push has prepared the sink, later pushes with the same fingerprint skip
            :meth:`prepare` (the engine remembers it in the ledger). ``None`` = always prepare.

    Optional attribute ``volatile_columns`` (tuple of rendered column names): payload columns
    that change on every scoring run (scoring time, model versions, …) and are left out of the
    change fingerprint. The built-in sinks derive it from their ``volatile_fields`` argument; a
    sink without it has every payload column fingerprinted.
    """

    kind: str
    key: str
    batch_size: int | None
    workers: int
    setup_fingerprint: str | None

    def render(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Turn validated, consenting predictions into the records this sink sends.

        Returns:
            A frame with ``__member_id``, ``__record_id`` (what the CRM identifies the record by,
            NA when missing) and one column per payload field, same order as the input.
        """
        ...

    def reject_reasons(self, rendered: pd.DataFrame) -> pd.Series:
        """Reasons to refuse records before sending (e.g. "no email"); NA = send it."""
        ...

    def prepare(self) -> None:
        """One-off set-up before the first batch (e.g. create missing CRM properties)."""
        ...

    def send_batch(self, batch: pd.DataFrame) -> BatchOutcome:
        """Deliver one batch of rendered records and say what happened to each.

        Raises:
            CrmError: The sink cannot take any more records now (auth, quota, outage); the
                records of this batch stay pending.
        """
        ...

    @property
    def requests_made(self) -> int:
        """HTTP requests (or file writes) made so far."""
        ...

    def cancel(self) -> None:
        """Stop in-flight work as soon as possible (another batch hit a hard error).

        Sinks that can be cancelled may also offer ``resume()``, which the engine calls once
        every worker has stopped so the same sink object can serve a later push.
        """
        ...


class HttpSinkMixin:
    """Request counting and cancellation shared by the sinks that talk HTTP through ``client``."""

    client: object

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far (retries and polls included)."""
        return self.client.requests_sent

    def cancel(self) -> None:
        """Stop further requests from any worker."""
        self.client.cancel()

    def resume(self) -> None:
        """Allow requests again after a cancelled push."""
        self.client.resume()
