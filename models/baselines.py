"""Simple baseline scorers the models must beat: Orbit love, a recency rule, a frequency rule.

Each baseline is one feature column turned into a score with the direction that makes sense for
the target: more love / more recent / more frequent activity means *more* likely to become an
ambassador and *less* likely to disengage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from features.errors import InsufficientDataError

__all__ = ["Baseline", "BASELINES", "resolve_baselines", "score_baseline", "fit_baseline_map"]


@dataclass(frozen=True)
class Baseline:
    """A one-column scoring rule.

    Attributes:
        name: Short name (``orbit_love``, ``recency``, ``frequency``).
        columns: Feature columns that can carry it, tried in order.
        engaged_direction: +1 when a larger value means a more engaged member, -1 otherwise.
    """

    name: str
    columns: tuple[str, ...]
    engaged_direction: int


BASELINES: tuple[Baseline, ...] = (
    Baseline("orbit_love", ("orbit_love",), +1),
    Baseline(
        "recency",
        ("days_since_last_activity",),
        -1,
    ),
    Baseline(
        "frequency",
        ("n_all_90d",),
        +1,
    ),
)

# Readiness rises with engagement, disengagement falls with it.
_TARGET_SIGN = {"readiness": +1, "disengagement": -1}


def resolve_baselines(
    feature_columns: Sequence[str], baselines: Sequence[Baseline] = BASELINES
) -> dict[str, str]:
    """Map each baseline to the feature column that carries it.

    Raises:
        InsufficientDataError: If a baseline's column is missing from the features.
    """
    available = set(feature_columns)
    out = {}
    for baseline in baselines:
        column = next((c for c in baseline.columns if c in available), None)
        if column is None:
            raise InsufficientDataError(
                f"baseline {baseline.name!r} needs one of the feature columns "
                f"{list(baseline.columns)}; the features have none of them"
            )
        out[baseline.name] = column
    return out


def score_baseline(data: pd.DataFrame, baseline: Baseline, column: str, target: str) -> np.ndarray:
    """Baseline score per row: higher means more likely positive for ``target``."""
    sign = baseline.engaged_direction * _TARGET_SIGN[target]
    return sign * data[column].to_numpy(dtype=np.float64)


def fit_baseline_map(score: np.ndarray, y: np.ndarray) -> IsotonicRegression:
    """Isotonic, increasing map from a baseline score to a probability, fitted on training rows."""
    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True).fit(
        np.asarray(score, dtype=np.float64), np.asarray(y, dtype=np.float64)
    )
