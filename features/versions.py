"""Guards for the few private APIs of other libraries that corecast relies on.

A private attribute or module (a leading underscore) may change in any release. Where corecast
uses one, the code states the releases it was checked on as ``KNOWN_GOOD``-style
``(lowest, highest)`` pairs of minor versions, both included, and calls :func:`known_good`
before using it. Outside that range, or when the library is not installed, the caller takes its
documented fallback (slower or plainer, never wrong). Widening a range is a deliberate step:
run the tests that exercise the private path on the new release, then raise the upper end.

Guarded today (see ``docs/architecture.md``, "Dependencies and private APIs"):

- ``serving.reasons.HGB_INTERNALS_KNOWN_GOOD``: scikit-learn's HistGradientBoosting internals
  behind the exact, tree-by-tree what-if of reasons; fallback: the generic what-if.
- ``pipelines.deploy.PREFECT_CRON_KNOWN_GOOD``: Prefect's private cron validator; fallback: a
  field-by-field check of the five cron fields.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

from packaging.version import InvalidVersion, Version

__all__ = ["installed_version", "known_good"]


@cache
def installed_version(distribution: str) -> Version | None:
    """The installed version of ``distribution``, or ``None`` when it is not installed (read
    once per process: reading package metadata scans the import path)."""
    try:
        return Version(version(distribution))
    except (PackageNotFoundError, InvalidVersion):
        return None


def known_good(distribution: str, known: tuple[str, str]) -> bool:
    """Whether the installed ``distribution`` is within ``known`` (lowest, highest).

    Releases compare by major and minor version only, so ``("1.6", "1.9")`` admits 1.6.0 up to
    every 1.9.x (pre-releases and patches included) and refuses 1.10.0.

    Args:
        distribution: The package name as installed (``"scikit-learn"``, ``"prefect"``).
        known: The lowest and highest minor versions the private API was checked on.
    """
    installed = installed_version(distribution)
    if installed is None:
        return False
    low, high = (Version(v).release[:2] for v in known)
    return low <= installed.release[:2] <= high
