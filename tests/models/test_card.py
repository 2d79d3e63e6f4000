"""The model card: holdout metrics with and without bootstrap intervals."""

from __future__ import annotations

import pandas as pd

from models.card import render_model_card


def _card(**extra) -> str:
    comparison = pd.DataFrame(
        {"roc_auc": [0.8124, 0.61], "pr_auc": [0.31, 0.12], "precision_at_k": [0.4, 0.2]},
        index=pd.Index(["model", "baseline:recency"], name="scorer"),
    )
    importance = pd.DataFrame(
        {"feature": ["events_90d"], "importance_mean": [0.05], "importance_std": [0.01]}
    )
    return render_model_card(
        target="readiness",
        candidate="hgb",
        calibration="isotonic",
        horizon_days=180,
        train_range=(pd.Timestamp("2023-01-01"), pd.Timestamp("2024-01-01")),
        holdout_dates=(pd.Timestamp("2024-07-01"),),
        n_train_rows=1000,
        n_holdout_rows=200,
        holdout_positives=6,
        capacity_k=2,
        comparison=comparison,
        importance=importance,
        backtest_summary={"hgb": 0.3},
        primary_metric="pr_auc",
        **extra,
    )


def test_card_without_intervals_is_unchanged():
    card = _card()
    assert card == _card(intervals=None) == _card(intervals={})
    assert "interval" not in card and "bootstrap" not in card
    assert "| model | 0.812 | 0.310 | 0.400 | - |" in card


def test_card_lists_intervals_beside_the_models_holdout_metrics():
    card = _card(
        intervals={"roc_auc": (0.74, 0.88), "pr_auc": (float("nan"), float("nan"))}, level=0.9
    )
    table_row = "| model | 0.812 | 0.310 | 0.400 | - |"
    assert table_row in card
    roc = "- ROC-AUC 0.812 (90 % interval 0.740–0.880, bootstrap over members)"
    assert roc in card and card.index(table_row) < card.index(roc) < card.index("Top features")
    assert "- PR-AUC 0.310 (interval undefined" in card
    assert "precision@k 0.400 (" not in card  # no interval given: not listed
    # intervals of metrics the card does not show add nothing
    assert _card(intervals={"accuracy": (0.1, 0.2)}) == _card()
