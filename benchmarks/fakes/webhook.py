"""A fake webhook receiver that verifies Standard Webhooks signatures and de-duplicates ids.

Every attempt is logged in :attr:`FakeWebhookReceiver.deliveries`; messages with a valid
signature are stored once per ``webhook-id`` in :attr:`FakeWebhookReceiver.messages` (a
repeated id is acknowledged with ``200`` but not applied again). A bad signature, a missing
header or a stale timestamp answers ``401``.
"""

from __future__ import annotations

import threading

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from benchmarks.fakes.server import FaultQueue, Request, Response, json_response, sleep_fault

__all__ = ["FakeWebhookReceiver"]


class FakeWebhookReceiver:
    """Webhook endpoint at any path (see the module docstring).

    Args:
        secret: The ``whsec_…`` secret shared with the sender.
    """

    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.faults = FaultQueue()
        self.lock = threading.Lock()
        self.deliveries: list[dict] = []
        self.messages: dict[str, dict] = {}
        self.records: dict[str, dict] = {}
        self.duplicates = 0
        self.refused = 0

    def handle(self, request: Request) -> Response:
        """Verify, de-duplicate and store one message."""
        with self.lock:
            self.deliveries.append({"id": request.header("webhook-id"), "path": request.path})
        fault = self.faults.take(request.path)
        if fault is not None:
            if fault.kind == "delay":
                sleep_fault(fault)
            else:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return Response(fault.status, fault.body.encode(), headers)
        try:
            message = self.verifier.verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            with self.lock:
                self.refused += 1
            return json_response(401, {"error": f"signature check failed: {exc}"})
        msg_id = request.header("webhook-id")
        with self.lock:
            if msg_id in self.messages:
                self.duplicates += 1
                return json_response(200, {"status": "duplicate"})
            self.messages[msg_id] = message
            for record in message["data"]["records"]:
                self.records[record["member_id"]] = record
        return json_response(200, {"status": "accepted"})
