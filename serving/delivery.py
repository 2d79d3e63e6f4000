"""What counts as a delivery, shared by the push, the flows and the command line.

A light module (no pandas, no HTTP) so that the command line can show the default in its help.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MIN_DELIVERED_SHARE"]

#: Share of the planned records a push must deliver not to fail (``PushOptions``, the flows and
#: ``--min-delivered-share``): a few refused rows are a partial delivery, most refused a failure.
DEFAULT_MIN_DELIVERED_SHARE = 0.9
