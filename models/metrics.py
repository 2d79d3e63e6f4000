"""Evaluation metrics for ranked binary predictions: pure functions of labels and scores.

Conventions:

- ``y`` is a 0/1 array, ``score`` any real-valued array where higher means "more likely
  positive". Probability metrics (Brier, log loss, calibration error) require ``score`` in [0, 1].
- Metrics that are undefined for the data (an AUC with a single class, a precision over zero
  rows) return ``nan`` rather than raising: a holdout where a chapter has no positive is data,
  not an error.
- Top-k metrics treat ties at the cut-off fairly: when several rows share the k-th score, each
  of them counts as selected with the same fractional weight, so the result is the expected value
  under a random tie-break. A baseline rule with many tied scores (e.g. "days since last
  activity") is therefore neither helped nor hurt by the order of rows in the table.
- Expected calibration error uses **equal-mass bins** by default (each bin holds the same number
  of rows, ordered by predicted probability); ``strategy="uniform"`` gives equal-width bins on
  [0, 1]. With low base rates, equal-width bins put almost every row in the first bin, which
  hides miscalibration, hence the default.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from features.errors import ConfigError

__all__ = [
    "PROBABILITY_METRICS",
    "RANK_METRICS",
    "METRIC_DIRECTIONS",
    "capacity_k",
    "roc_auc",
    "pr_auc",
    "brier_score",
    "log_loss",
    "expected_calibration_error",
    "precision_at_k",
    "recall_at_k",
    "top_fraction_lift",
    "chapter_top_precision",
    "chapter_roc_auc",
    "evaluate_scores",
    "is_better",
]

#: Metrics that only need an ordering of the rows.
RANK_METRICS = (
    "roc_auc",
    "pr_auc",
    "precision_at_k",
    "recall_at_k",
    "lift_top_decile",
    "chapter_top_precision",
    "chapter_roc_auc_min",
    "chapter_roc_auc_median",
    "chapter_roc_auc_max",
)
#: Metrics that need calibrated probabilities.
PROBABILITY_METRICS = ("brier", "log_loss", "ece")
#: +1 when higher is better, -1 when lower is better.
METRIC_DIRECTIONS: dict[str, int] = {
    **{name: 1 for name in RANK_METRICS},
    **{name: -1 for name in PROBABILITY_METRICS},
}

_EPS = 1e-15


def _arrays(y, score) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    s_arr = np.asarray(score, dtype=np.float64).ravel()
    if y_arr.shape != s_arr.shape:
        raise ValueError(f"labels ({y_arr.size}) and scores ({s_arr.size}) differ in length")
    return y_arr, s_arr


def _both_classes(y: np.ndarray) -> bool:
    return y.size > 0 and 0 < y.sum() < y.size


def capacity_k(n_eligible: int, share: float) -> int:
    """Return how many members a team can act on: ``floor(share * n_eligible)``, at least 1.

    Args:
        n_eligible: Number of eligible members at the as-of date.
        share: Fraction of them the team has capacity for (e.g. 0.01).
    """
    if not 0 < share <= 1:
        raise ConfigError(f"capacity_share must be in (0, 1], got {share}")
    return max(1, int(math.floor(share * n_eligible + 1e-9)))


def roc_auc(y, score) -> float:
    """Area under the ROC curve (ties count one half); ``nan`` with a single class."""
    y_arr, s_arr = _arrays(y, score)
    if not _both_classes(y_arr):
        return float("nan")
    return float(roc_auc_score(y_arr, s_arr))


def pr_auc(y, score) -> float:
    """Average precision (step-wise area under the precision-recall curve); ``nan`` without
    positives."""
    y_arr, s_arr = _arrays(y, score)
    if y_arr.size == 0 or y_arr.sum() == 0:
        return float("nan")
    return float(average_precision_score(y_arr, s_arr))


def brier_score(y, prob) -> float:
    """Mean squared difference between probability and outcome."""
    y_arr, p_arr = _arrays(y, prob)
    if y_arr.size == 0:
        return float("nan")
    return float(np.mean((p_arr - y_arr) ** 2))


def log_loss(y, prob) -> float:
    """Mean negative log-likelihood (natural log), probabilities clipped to [1e-15, 1 - 1e-15]."""
    y_arr, p_arr = _arrays(y, prob)
    if y_arr.size == 0:
        return float("nan")
    p = np.clip(p_arr, _EPS, 1 - _EPS)
    return float(-np.mean(y_arr * np.log(p) + (1 - y_arr) * np.log1p(-p)))


def expected_calibration_error(y, prob, n_bins: int = 10, strategy: str = "quantile") -> float:
    """Expected calibration error: ``sum_b (n_b / n) * |mean(prob_b) - mean(y_b)|``.

    Args:
        y: 0/1 outcomes.
        prob: Predicted probabilities.
        n_bins: Number of bins.
        strategy: ``"quantile"`` (equal mass: rows sorted by probability, bin ``b`` holds rows
            ``floor(i * n_bins / n) == b``; tied probabilities may straddle two bins) or
            ``"uniform"`` (equal width on [0, 1], the last bin closed on the right).
    """
    y_arr, p_arr = _arrays(y, prob)
    n = y_arr.size
    if n == 0:
        return float("nan")
    if n_bins < 1:
        raise ConfigError(f"n_bins must be >= 1, got {n_bins}")
    if strategy == "quantile":
        order = np.argsort(p_arr, kind="stable")
        bins = np.empty(n, dtype=np.int64)
        bins[order] = (np.arange(n) * n_bins) // n
    elif strategy == "uniform":
        bins = np.clip(np.floor(p_arr * n_bins).astype(np.int64), 0, n_bins - 1)
    else:
        raise ConfigError(f"ECE strategy must be 'quantile' or 'uniform', got {strategy!r}")
    sum_p = np.bincount(bins, weights=p_arr, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y_arr, minlength=n_bins)
    return float(np.abs(sum_p - sum_y).sum() / n)


def _top_k_hits(y: np.ndarray, s: np.ndarray, k: int) -> float:
    """Expected number of positives among the k highest scores under a random tie-break."""
    k = min(k, y.size)
    if k <= 0:
        return 0.0
    kth = np.partition(s, y.size - k)[y.size - k]
    above = s > kth
    tied = s == kth
    n_above = int(above.sum())
    return float(y[above].sum() + (k - n_above) * y[tied].mean())


def precision_at_k(y, score, k: int) -> float:
    """Share of positives among the ``k`` highest-scored rows (ties shared fractionally)."""
    y_arr, s_arr = _arrays(y, score)
    k = min(int(k), y_arr.size)
    if k <= 0:
        return float("nan")
    return _top_k_hits(y_arr, s_arr, k) / k


def recall_at_k(y, score, k: int) -> float:
    """Share of all positives found among the ``k`` highest-scored rows; ``nan`` without
    positives."""
    y_arr, s_arr = _arrays(y, score)
    positives = y_arr.sum()
    if positives == 0:
        return float("nan")
    return float(_top_k_hits(y_arr, s_arr, min(int(k), y_arr.size)) / positives)


def top_fraction_lift(y, score, fraction: float = 0.1) -> float:
    """Precision among the top ``ceil(fraction * n)`` rows divided by the base rate."""
    y_arr, s_arr = _arrays(y, score)
    if y_arr.size == 0 or y_arr.sum() == 0:
        return float("nan")
    k = max(1, int(math.ceil(fraction * y_arr.size - 1e-9)))
    return float(precision_at_k(y_arr, s_arr, k) / y_arr.mean())


def chapter_top_precision(y, score, chapter, top: int = 3) -> float:
    """Pooled precision of each chapter's ``top`` highest-scored rows.

    Every chapter contributes its ``min(top, size)`` best-scored rows (ties at a chapter's
    cut-off shared fractionally); the result is total positives selected over total selected
    (a micro average, so large and small chapters weigh by how many members they put forward).
    """
    y_arr, s_arr = _arrays(y, score)
    if y_arr.size == 0:
        return float("nan")
    frame = pd.DataFrame(
        {"g": pd.Series(chapter).to_numpy(dtype=object), "y": y_arr, "s": s_arr}
    ).fillna({"g": "<none>"})
    frame = frame.sort_values(["g", "s"], ascending=[True, False], kind="stable")
    grouped = frame.groupby("g", sort=False)
    size = grouped["s"].transform("size")
    position = grouped.cumcount()
    n_sel = np.minimum(size, top)
    kth_rows = frame[position == (n_sel - 1)]
    kth = frame["g"].map(pd.Series(kth_rows["s"].to_numpy(), index=kth_rows["g"].to_numpy()))
    frame = frame.assign(
        above=(frame["s"] > kth).astype(np.float64),
        tied=(frame["s"] == kth).astype(np.float64),
    )
    frame = frame.assign(y_above=frame["y"] * frame["above"], y_tied=frame["y"] * frame["tied"])
    per = frame.groupby("g", sort=False)[["above", "tied", "y_above", "y_tied"]].sum()
    n_sel_g = np.minimum(frame.groupby("g", sort=False).size(), top)
    hits = per["y_above"] + (n_sel_g - per["above"]) * per["y_tied"] / per["tied"]
    return float(hits.sum() / n_sel_g.sum())


def chapter_roc_auc(y, score, chapter) -> dict[str, float]:
    """ROC-AUC within each chapter that has both classes: min, median, max and the count.

    Computed for all chapters at once from within-chapter average ranks (Mann-Whitney U).

    Returns:
        ``{"chapter_roc_auc_min", "chapter_roc_auc_median", "chapter_roc_auc_max",
        "chapters_with_both_classes"}`` (the three statistics are ``nan`` when no chapter has
        both classes).
    """
    y_arr, s_arr = _arrays(y, score)
    frame = pd.DataFrame(
        {"g": pd.Series(chapter).to_numpy(dtype=object), "y": y_arr, "s": s_arr}
    ).fillna({"g": "<none>"})
    frame["rank"] = frame.groupby("g")["s"].rank(method="average")
    frame["rank_pos"] = frame["rank"] * frame["y"]
    per = frame.groupby("g").agg(n=("y", "size"), n1=("y", "sum"), r1=("rank_pos", "sum"))
    per = per[(per["n1"] > 0) & (per["n1"] < per["n"])]
    n0 = per["n"] - per["n1"]
    auc = (per["r1"] - per["n1"] * (per["n1"] + 1) / 2) / (per["n1"] * n0)
    if auc.empty:
        nan = float("nan")
        return {
            "chapter_roc_auc_min": nan,
            "chapter_roc_auc_median": nan,
            "chapter_roc_auc_max": nan,
            "chapters_with_both_classes": 0.0,
        }
    return {
        "chapter_roc_auc_min": float(auc.min()),
        "chapter_roc_auc_median": float(auc.median()),
        "chapter_roc_auc_max": float(auc.max()),
        "chapters_with_both_classes": float(auc.size),
    }


def evaluate_scores(
    y,
    score,
    chapter,
    *,
    capacity_share: float = 0.01,
    chapter_top: int = 3,
    ece_bins: int = 10,
    ece_strategy: str = "quantile",
    probabilities: bool = True,
) -> dict[str, float]:
    """Every metric of one set of scores on one evaluation set.

    Args:
        y: 0/1 outcomes.
        score: Scores (probabilities when ``probabilities`` is true).
        chapter: Chapter of each row (for per-chapter metrics).
        capacity_share: k for precision/recall@k is ``capacity_k(len(y), capacity_share)``.
        chapter_top: How many members each chapter puts forward.
        ece_bins: Number of calibration bins.
        ece_strategy: ``"quantile"`` or ``"uniform"`` (see :func:`expected_calibration_error`).
        probabilities: Also compute Brier, log loss and ECE.

    Returns:
        A flat ``{metric: value}`` dict, including ``n``, ``positives``, ``base_rate`` and ``k``.
    """
    y_arr, s_arr = _arrays(y, score)
    k = capacity_k(y_arr.size, capacity_share) if y_arr.size else 0
    out: dict[str, float] = {
        "n": float(y_arr.size),
        "positives": float(y_arr.sum()),
        "base_rate": float(y_arr.mean()) if y_arr.size else float("nan"),
        "k": float(k),
        "roc_auc": roc_auc(y_arr, s_arr),
        "pr_auc": pr_auc(y_arr, s_arr),
        "precision_at_k": precision_at_k(y_arr, s_arr, k),
        "recall_at_k": recall_at_k(y_arr, s_arr, k),
        "lift_top_decile": top_fraction_lift(y_arr, s_arr, 0.1),
        "chapter_top_precision": chapter_top_precision(y_arr, s_arr, chapter, chapter_top),
    }
    out.update(chapter_roc_auc(y_arr, s_arr, chapter))
    if probabilities:
        out["brier"] = brier_score(y_arr, s_arr)
        out["log_loss"] = log_loss(y_arr, s_arr)
        out["ece"] = expected_calibration_error(y_arr, s_arr, ece_bins, ece_strategy)
    return out


def is_better(metric: str, candidate: float, reference: float, tolerance: float = 0.0) -> bool:
    """Whether ``candidate`` is at least as good as ``reference`` on ``metric``, up to
    ``tolerance`` (an allowed shortfall in the metric's own units).

    A ``nan`` candidate is never at least as good; a ``nan`` reference always is beaten.
    """
    if metric not in METRIC_DIRECTIONS:
        raise ConfigError(
            f"unknown metric {metric!r}; choose one of {', '.join(sorted(METRIC_DIRECTIONS))}"
        )
    if math.isnan(candidate):
        return False
    if math.isnan(reference):
        return True
    direction = METRIC_DIRECTIONS[metric]
    return direction * (candidate - reference) >= -abs(tolerance) - 1e-12
