"""Run one HubSpot push in its own process (the crash test kills it with SIGKILL).

Usage: ``python -m tests.serving.run_push '<json spec>'`` with keys ``predictions``,
``ledger``, ``url`` and optionally ``workers`` and ``batch_size``. The token comes from
``CORECAST_HUBSPOT_TOKEN``. Prints the report counts as JSON.
"""

from __future__ import annotations

import json
import sys

from serving.crm import HubSpotConfig, PushOptions, push_from_file


def main(argv: list[str]) -> int:
    """Run the push described by ``argv[1]``."""
    spec = json.loads(argv[1])
    options = PushOptions(
        ledger_path=spec["ledger"],
        hubspot=HubSpotConfig(
            base_url=spec["url"],
            workers=int(spec.get("workers", 1)),
            batch_size=int(spec.get("batch_size", 100)),
        ),
    )
    report = push_from_file(spec["predictions"], "hubspot", options)
    print(json.dumps({"sent": report.sent, "failed": report.failed, "pending": report.pending}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
