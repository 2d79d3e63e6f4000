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
- Bootstrap intervals resample **members**, not rows (a cluster bootstrap): a member appears
  once per snapshot date, so its rows are not independent. Drawing ``m`` members with
  replacement is the same as giving member ``i`` the integer weight ``w_i`` with
  ``w ~ Multinomial(m, 1/m)``; every replicate is then a weighted metric, computed for all
  replicates at once from the score order (which the resample does not change).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.metrics import log_loss as sklearn_log_loss

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
    "BOOTSTRAP_METRICS",
    "weighted_rank_metric",
    "bootstrap_intervals",
    "paired_bootstrap_difference",
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
    """Mean squared difference between probability and outcome (scikit-learn's
    ``brier_score_loss``); ``nan`` without rows, defined with a single class.

    Raises:
        ValueError: If a probability is outside [0, 1].
    """
    y_arr, p_arr = _arrays(y, prob)
    if y_arr.size == 0:
        return float("nan")
    return float(brier_score_loss(y_arr, p_arr))


def log_loss(y, prob) -> float:
    """Mean negative log-likelihood (natural log; scikit-learn's ``log_loss``), probabilities
    clipped to [1e-15, 1 - 1e-15] first (scikit-learn clips to the float epsilon only);
    ``nan`` without rows, defined with a single class."""
    y_arr, p_arr = _arrays(y, prob)
    if y_arr.size == 0:
        return float("nan")
    p = np.clip(p_arr, _EPS, 1 - _EPS)
    return float(sklearn_log_loss(y_arr, p, labels=[0, 1]))


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


#: Metrics that :func:`weighted_rank_metric` and the bootstrap functions compute.
BOOTSTRAP_METRICS = ("roc_auc", "pr_auc", "precision_at_k")

#: k of precision@k: fixed, or a function of one date's (weighted) row count; ``None`` is
#: ``capacity_k(n, 0.01)``, the default of :func:`evaluate_scores`.
KSpec = int | Callable[[int], int] | None

_DEFAULT_CAPACITY_SHARE = 0.01
#: Replicate x row cells held in memory at once (the bootstrap works in chunks of replicates).
_MAX_CELLS = 1 << 22


def _check_bootstrap(metrics: Sequence[str], n_boot: int, level: float) -> None:
    unknown = [m for m in metrics if m not in BOOTSTRAP_METRICS]
    if unknown:
        raise ConfigError(
            f"unknown bootstrap metric(s) {unknown}; choose from {', '.join(BOOTSTRAP_METRICS)}"
        )
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")


def _score_groups(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row order by descending score, and where each run of tied scores starts in that order."""
    order = np.argsort(-score, kind="stable")
    ordered = score[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if ordered.size else order
    return order, starts


def _group_weights(
    w_sorted: np.ndarray, y_sorted: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight of each tied-score group: two ``(replicates, groups)``."""
    if starts.size == 0:
        empty = np.zeros((w_sorted.shape[0], 0))
        return empty, empty
    pos = np.add.reduceat(w_sorted * y_sorted, starts, axis=1)
    neg = np.add.reduceat(w_sorted * (1.0 - y_sorted), starts, axis=1)
    return pos, neg


def _resolve_k(k: KSpec, n_rows: np.ndarray) -> np.ndarray:
    """k of each replicate from its weighted row count, capped at that count."""
    n_int = np.rint(n_rows).astype(np.int64)
    if k is not None and not callable(k):
        return np.minimum(float(int(k)), n_int).astype(np.float64)
    fn = k if callable(k) else (lambda n: capacity_k(n, _DEFAULT_CAPACITY_SHARE))
    unique, inverse = np.unique(n_int, return_inverse=True)
    values = np.array([int(fn(int(n))) for n in unique], dtype=np.float64)
    return np.minimum(values[inverse], n_int).astype(np.float64)


def _grouped_metric(metric: str, pos: np.ndarray, neg: np.ndarray, k: KSpec) -> np.ndarray:
    """One weighted metric per replicate from the per-group weights (groups by descending score).

    ROC-AUC: each positive scores the negative weight strictly below it plus half the tied
    negative weight. Average precision: sum over groups of (positive weight / total positive
    weight) x precision at that group's threshold (sklearn's step definition, ties grouped).
    precision@k: positive weight above the cut-off group plus the cut-off group's positive share
    of the remaining ``k`` (a random tie-break in expectation).
    """
    n_rep = pos.shape[0]
    if pos.shape[1] == 0:
        return np.full(n_rep, np.nan)
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    cum_pos = np.cumsum(pos, axis=1)
    cum_neg = np.cumsum(neg, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "roc_auc":
            below = total_neg[:, None] - cum_neg
            value = (pos * (below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
            return np.where((total_pos > 0) & (total_neg > 0), value, np.nan)
        cum_all = cum_pos + cum_neg
        if metric == "pr_auc":
            precision = np.divide(cum_pos, cum_all, out=np.zeros_like(cum_pos), where=cum_all > 0)
            return np.where(total_pos > 0, (pos * precision).sum(axis=1) / total_pos, np.nan)
        k_arr = _resolve_k(k, cum_all[:, -1])
        rows = np.arange(n_rep)
        cut = np.argmax(cum_all >= k_arr[:, None], axis=1)
        weight_cut = pos[rows, cut] + neg[rows, cut]
        above = cum_all[rows, cut] - weight_cut
        hits = cum_pos[rows, cut] - pos[rows, cut] + (k_arr - above) * pos[rows, cut] / weight_cut
        return np.where(k_arr > 0, hits / k_arr, np.nan)


def weighted_rank_metric(metric: str, y, score, weight, *, k: KSpec = None) -> float | np.ndarray:
    """A rank metric under row weights, for one weight vector or many at once.

    Integer weights give the metric of the table with each row repeated ``weight`` times; unit
    weights give :func:`roc_auc`, :func:`pr_auc` and :func:`precision_at_k` (ties count one half
    in ROC-AUC; average precision steps once per distinct score, as sklearn's; precision@k shares
    a tie at the cut-off fractionally).

    Args:
        metric: One of :data:`BOOTSTRAP_METRICS`.
        y: 0/1 outcomes, length n.
        score: Scores, length n.
        weight: Non-negative weights, shape ``(n,)`` or ``(replicates, n)``.
        k: precision@k only: an int, or a function of the weighted row count returning k
            (``None``: ``capacity_k(n, 0.01)``); capped at the weighted row count.

    Returns:
        A float for 1-D weights, else one value per weight row; ``nan`` where undefined (ROC-AUC
        without both classes, PR-AUC without positives, precision@k with k = 0).
    """
    _check_bootstrap((metric,), 1, 0.5)
    y_arr, s_arr = _arrays(y, score)
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim not in (1, 2) or w.shape[-1] != y_arr.size:
        raise ValueError(f"weights of shape {w.shape} do not match {y_arr.size} rows")
    order, starts = _score_groups(s_arr)
    pos, neg = _group_weights(np.atleast_2d(w)[:, order], y_arr[order], starts)
    out = _grouped_metric(metric, pos, neg, k)
    return float(out[0]) if w.ndim == 1 else out


_Block = tuple[np.ndarray, np.ndarray, np.ndarray]


def _date_blocks(y: np.ndarray, score: np.ndarray, dates) -> list[_Block]:
    """Per snapshot date (a single block without dates): row indices by descending score,
    tie-group starts in that order, and the labels in that order."""
    if dates is None:
        parts = [np.arange(y.size)]
    else:
        codes, _ = pd.factorize(pd.Series(dates).to_numpy(), use_na_sentinel=False)
        if codes.size != y.size:
            raise ValueError(f"dates ({codes.size}) and labels ({y.size}) differ in length")
        parts = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)] if y.size else []
    blocks = []
    for idx in parts:
        order, starts = _score_groups(score[idx])
        blocks.append((idx[order], starts, y[idx[order]]))
    return blocks


def _member_codes(groups, n_rows: int) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(pd.Series(groups).to_numpy(), use_na_sentinel=False)
    if codes.size != n_rows:
        raise ValueError(f"groups ({codes.size}) and labels ({n_rows}) differ in length")
    return codes, len(uniques)


def _member_weight_chunks(n_members: int, n_boot: int, n_rows: int, seed: int):
    """Yield the member weights of the replicates, ``(chunk, n_members)`` at a time: replicate
    ``b`` draws ``n_members`` members with replacement and weighs each by its draw count."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, _MAX_CELLS // max(1, n_rows, n_members)))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        draws = rng.integers(0, n_members, size=(size, n_members))
        flat = (draws + (np.arange(size) * n_members)[:, None]).ravel()
        counts = np.bincount(flat, minlength=size * n_members)
        yield counts.reshape(size, n_members).astype(np.float64)


def _replicate_values(
    blocks: list[_Block],
    members: np.ndarray,
    member_w: np.ndarray,
    metrics: Sequence[str],
    k: KSpec,
) -> dict[str, np.ndarray]:
    """Each metric per replicate: the mean over the dates where it is defined, as the holdout
    evaluation averages (ROC-AUC and PR-AUC where the replicate has both classes; precision@k
    wherever it has rows, 0 on a date without positives); ``nan`` for a replicate with no
    such date."""
    n_rep = member_w.shape[0]
    sums = {m: np.zeros(n_rep) for m in metrics}
    n_dates = {m: np.zeros(n_rep) for m in metrics}
    for rows, starts, y_sorted in blocks:
        pos, neg = _group_weights(member_w[:, members[rows]], y_sorted, starts)
        has_pos, has_neg = pos.sum(axis=1) > 0, neg.sum(axis=1) > 0
        for m in metrics:
            defined = (has_pos | has_neg) if m == "precision_at_k" else (has_pos & has_neg)
            with np.errstate(invalid="ignore", divide="ignore"):
                value = _grouped_metric(m, pos, neg, k)
            sums[m] += np.where(defined, np.nan_to_num(value), 0.0)
            n_dates[m] += defined
    with np.errstate(invalid="ignore", divide="ignore"):
        return {m: np.where(n_dates[m] > 0, sums[m] / n_dates[m], np.nan) for m in metrics}


def _percentile_interval(values: np.ndarray, n_boot: int, level: float) -> tuple[float, float]:
    """Percentile interval of the defined replicates; ``(nan, nan)`` if under half are."""
    defined = values[~np.isnan(values)]
    if defined.size == 0 or defined.size < n_boot / 2:
        return float("nan"), float("nan")
    low, high = np.quantile(defined, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def bootstrap_intervals(
    y,
    score,
    groups,
    *,
    metrics: Sequence[str] = BOOTSTRAP_METRICS,
    k: KSpec = None,
    dates=None,
    n_boot: int = 200,
    level: float = 0.9,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of rank metrics under a bootstrap over members.

    Each replicate draws as many members as there are, with replacement; a drawn member brings
    all its rows (one per snapshot date), as often as it was drawn.

    Args:
        y: 0/1 outcomes.
        score: Scores (higher means more likely positive).
        groups: Member id of each row.
        metrics: Any of :data:`BOOTSTRAP_METRICS`.
        k: k of precision@k, per date: an int, or a function of the date's row count in the
            replicate returning k (e.g. ``lambda n: capacity_k(n, 0.01)``, the default for
            ``None``); capped at that row count.
        dates: Snapshot date of each row, or ``None`` to pool all rows as one date. With dates,
            a replicate's metric is the mean over dates of the per-date metric, as the holdout
            evaluation averages: ROC-AUC and PR-AUC skip the dates where the replicate lacks a
            class, precision@k counts a date without positives as 0.
        n_boot: Number of replicates.
        level: Coverage of the interval (0.9: the 5th and 95th percentiles).
        seed: Seed of the resampling; equal inputs and seed give equal intervals.

    Returns:
        ``{metric: (low, high)}``. Replicates where a metric is undefined (no date with both
        classes) are dropped; ``(nan, nan)`` when fewer than half of them define it.
    """
    _check_bootstrap(metrics, n_boot, level)
    y_arr, s_arr = _arrays(y, score)
    members, n_members = _member_codes(groups, y_arr.size)
    if n_members == 0:
        return {m: (float("nan"), float("nan")) for m in metrics}
    blocks = _date_blocks(y_arr, s_arr, dates)
    chunks = [
        _replicate_values(blocks, members, w, metrics, k)
        for w in _member_weight_chunks(n_members, n_boot, y_arr.size, seed)
    ]
    return {
        m: _percentile_interval(np.concatenate([c[m] for c in chunks]), n_boot, level)
        for m in metrics
    }


def paired_bootstrap_difference(
    y,
    score_a,
    score_b,
    groups,
    *,
    metric: str = "pr_auc",
    dates=None,
    k: KSpec = None,
    n_boot: int = 200,
    level: float = 0.9,
    seed: int = 0,
) -> dict[str, float]:
    """Difference ``metric(a) - metric(b)`` of two scorers on the same rows, with a paired
    bootstrap over members (both scorers see the same resample in every replicate).

    Meant for a promotion gate: a challenger ``a`` against the champion ``b``; promote only if
    ``low`` clears the margin you require, not on the point estimate alone.

    Args:
        y: 0/1 outcomes.
        score_a: Scores of the challenger.
        score_b: Scores of the champion, same rows.
        groups: Member id of each row.
        metric: One of :data:`BOOTSTRAP_METRICS`.
        dates: Snapshot date of each row (see :func:`bootstrap_intervals`).
        k: k of precision@k per date (see :func:`bootstrap_intervals`).
        n_boot: Number of replicates.
        level: Coverage of the interval.
        seed: Seed of the resampling.

    Returns:
        ``{"difference", "low", "high", "p_a_worse"}``: the difference on the full data, the
        percentile interval of the replicate differences, and the share of replicates where
        ``a`` scores below ``b``. Replicates where the metric is undefined are dropped; all
        but ``difference`` are ``nan`` when fewer than half of the replicates define it.
    """
    _check_bootstrap((metric,), n_boot, level)
    y_arr, s_a = _arrays(y, score_a)
    _, s_b = _arrays(y, score_b)
    members, n_members = _member_codes(groups, y_arr.size)
    nan = float("nan")
    if n_members == 0:
        return {"difference": nan, "low": nan, "high": nan, "p_a_worse": nan}
    blocks_a, blocks_b = _date_blocks(y_arr, s_a, dates), _date_blocks(y_arr, s_b, dates)

    def diff(w: np.ndarray) -> np.ndarray:
        a = _replicate_values(blocks_a, members, w, (metric,), k)[metric]
        return a - _replicate_values(blocks_b, members, w, (metric,), k)[metric]

    point = float(diff(np.ones((1, n_members)))[0])
    reps = np.concatenate(
        [diff(w) for w in _member_weight_chunks(n_members, n_boot, y_arr.size, seed)]
    )
    low, high = _percentile_interval(reps, n_boot, level)
    defined = reps[~np.isnan(reps)]
    p_a_worse = nan if math.isnan(low) else float(np.mean(defined < 0))
    return {"difference": point, "low": low, "high": high, "p_a_worse": p_a_worse}
