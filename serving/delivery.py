"""What counts as a delivery, and who is held back from outreach: defaults shared by the push,
the scorer, the flows and the command line.

A light module (no pandas, no HTTP) so that the command line can show the default in its help.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MIN_DELIVERED_SHARE", "DEFAULT_HOLDOUT_SHARE"]

#: Share of the planned records a push must deliver not to fail (``PushOptions``, the flows and
#: ``--min-delivered-share``): a few refused rows are a partial delivery, most refused a failure.
DEFAULT_MIN_DELIVERED_SHARE = 0.9

#: Share of the flagged members held back each cycle as the control group (``--holdout-share``,
#: :class:`serving.outreach.OutreachConfig`).
DEFAULT_HOLDOUT_SHARE = 0.1
