"""Model factories: each returns an *unfitted* scikit-learn Pipeline with its preprocessing."""

from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from features.errors import ConfigError
from models.config import CANDIDATES, TrainConfig
from models.estimators import Log1pNonNegative

__all__ = ["build_logreg_pipeline", "build_hgb_pipeline", "build_candidate"]


def _class_weight(value: str | None) -> str | None:
    if value in (None, "none"):
        return None
    if value == "balanced":
        return "balanced"
    raise ConfigError(f"class_weight must be 'none' or 'balanced', got {value!r}")


def build_logreg_pipeline(
    *,
    c: float = 0.05,
    max_iter: int = 500,
    class_weight: str | None = "balanced",
    seed: int = 0,
) -> Pipeline:
    """Regularised logistic regression on log-scaled, standardised features.

    Steps: ``log1p`` of the non-negative (count-like) columns, standard scaling, then an L2
    logistic regression.

    Args:
        c: Inverse regularisation strength.
        max_iter: Solver iterations.
        class_weight: ``"balanced"`` up-weights the rare positives; ``"none"`` / ``None`` fits
            the plain likelihood.
        seed: Random state.
    """
    return Pipeline(
        [
            ("log1p", Log1pNonNegative()),
            ("scale", StandardScaler()),
            (
                "model",
                LogisticRegression(
                    C=c,
                    class_weight=_class_weight(class_weight),
                    max_iter=max_iter,
                    random_state=seed,
                ),
            ),
        ]
    )


def build_hgb_pipeline(
    *,
    learning_rate: float = 0.1,
    max_iter: int = 100,
    max_leaf_nodes: int = 15,
    max_depth: int | None = 3,
    min_samples_leaf: int = 300,
    max_features: float = 0.5,
    l2_regularization: float = 10.0,
    class_weight: str | None = "balanced",
    seed: int = 0,
) -> Pipeline:
    """Histogram gradient boosting (trees need no scaling).

    Early stopping is off so a fit is a deterministic function of its data and seed.

    Args:
        learning_rate: Shrinkage.
        max_iter: Boosting iterations.
        max_leaf_nodes: Leaves per tree.
        max_depth: Depth limit (``None`` = only the leaf limit).
        min_samples_leaf: Minimum rows per leaf.
        max_features: Share of features considered at each split.
        l2_regularization: L2 penalty on leaf values.
        class_weight: ``"balanced"`` or ``"none"`` / ``None`` (see the logistic regression).
        seed: Random state.
    """
    return Pipeline(
        [
            (
                "model",
                HistGradientBoostingClassifier(
                    learning_rate=learning_rate,
                    max_iter=max_iter,
                    max_leaf_nodes=max_leaf_nodes,
                    max_depth=max_depth,
                    min_samples_leaf=min_samples_leaf,
                    max_features=max_features,
                    l2_regularization=l2_regularization,
                    class_weight=_class_weight(class_weight),
                    early_stopping=False,
                    random_state=seed,
                ),
            )
        ]
    )


def build_candidate(name: str, config: TrainConfig) -> Pipeline:
    """Return the unfitted pipeline of candidate ``name`` with the hyper-parameters of ``config``.

    Raises:
        ConfigError: If ``name`` is not a known candidate.
    """
    if name == "logreg":
        return build_logreg_pipeline(
            c=config.logreg_c,
            max_iter=config.logreg_max_iter,
            class_weight=config.class_weight,
            seed=config.seed,
        )
    if name == "hgb":
        return build_hgb_pipeline(
            learning_rate=config.hgb_learning_rate,
            max_iter=config.hgb_max_iter,
            max_leaf_nodes=config.hgb_max_leaf_nodes,
            max_depth=config.hgb_max_depth,
            min_samples_leaf=config.hgb_min_samples_leaf,
            max_features=config.hgb_max_features,
            l2_regularization=config.hgb_l2_regularization,
            class_weight=config.class_weight,
            seed=config.seed,
        )
    raise ConfigError(f"unknown candidate {name!r}; choose from {', '.join(CANDIDATES)}")
