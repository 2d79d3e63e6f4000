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
- :class:`CrmRefused` (a :class:`CrmError`): the CRM refused the request itself (a bad token,
  a missing scope, an unknown property: HTTP 4xx other than 408 and 429); never retried.
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
    "CrmRefused",
    "DeliveryFailed",
    "crm_error_for_status",
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


class CrmRefused(CrmError):
    """The CRM refused the request itself: a bad or expired token, a missing scope, a property
    it does not know. Waiting will not change the answer, so nothing retries it."""


def crm_error_for_status(status: int, message: str) -> CrmError:
    """A :class:`CrmRefused` for a client error (4xx but 408 and 429), else a :class:`CrmError`."""
    refused = 400 <= status < 500 and status not in (408, 429)
    return (CrmRefused if refused else CrmError)(message)
