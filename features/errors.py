"""The one exception hierarchy of corecast.

Every error a user can cause is a :class:`CorecastError`; the command line prints its message and
exits non-zero without a traceback. Anything else is a bug.

- :class:`ContractError`: input data breaks the data contract (file, column, rows named).
- :class:`ConfigError`: an option or configuration value is invalid.
- :class:`InsufficientDataError`: too little data for what was asked (says how much is needed).
- :class:`TargetUnavailable`: a target cannot be built from this data (e.g. no roles table).
- :class:`ModelNotFound`: a registered model, version or alias does not exist.
- :class:`PromotionRefused`: the registry gate refused to promote a challenger.
- :class:`CrmError`: a CRM or webhook endpoint failed in a way retries could not fix.
- :class:`DeliveryFailed`: a push reached the CRM but delivered less than the share asked for
  (every record refused, say); waiting will not change the answer, so it is never retried.
"""

from __future__ import annotations

__all__ = [
    "CorecastError",
    "ContractError",
    "ConfigError",
    "InsufficientDataError",
    "TargetUnavailable",
    "ModelNotFound",
    "PromotionRefused",
    "CrmError",
    "DeliveryFailed",
]


class CorecastError(Exception):
    """Base class of every error a user of corecast can cause."""


class ContractError(CorecastError):
    """Input data breaks the data contract.

    The message names the file (or table), the column, how many rows, and a few examples.
    """


class ConfigError(CorecastError):
    """An option or configuration value is invalid."""


class InsufficientDataError(CorecastError):
    """There is too little data for the requested operation; the message says how much is needed."""


class TargetUnavailable(CorecastError):
    """A prediction target cannot be built from this data source (e.g. no ``roles`` table)."""


class ModelNotFound(CorecastError):
    """A registered model, version or alias does not exist in the registry."""


class PromotionRefused(CorecastError):
    """The registry gate refused to make a challenger the champion."""


class CrmError(CorecastError):
    """A CRM, webhook or sink failed in a way that retries could not fix."""


class DeliveryFailed(CorecastError):
    """A push delivered less than ``min_delivered_share`` of the records it planned to send.

    The message gives the counts, the most frequent refusal reasons and where the dead letters
    are (``corecast push --status``).
    """
