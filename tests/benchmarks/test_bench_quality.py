"""The quality benchmark's pooling over communities and its tenure breakdown (hand-made figures)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from benchmarks import bench_quality as bq


def _fig(model, oracle, baseline, ece, candidate="logreg"):
    """Figures of one target in one community: (roc list, p@k list) per scorer."""
    def scorer(pair):
        return {"roc_auc": list(pair[0]), "precision_at_k": list(pair[1])}

    return {
        "candidate": candidate,
        "comparison": {"model": {"ece": ece}},
        "snapshots_eval": {
            "dates": ["2022-01-01"] * len(model[0]),
            "positives": [10] * len(model[0]),
            "model": scorer(model),
            "oracle": scorer(oracle),
            "baseline:recency": scorer(baseline),
        },
    }


def _runs():
    first = _fig(([0.9, 0.8], [0.2, 0.4]), ([1.0, 0.9], [0.3, 0.5]), ([0.7, 0.7], [0.1, 0.1]),
                 ece=0.01)
    second = _fig(([0.95], [0.5]), ([1.0], [0.5]), ([0.8], [0.2]), ece=0.02, candidate="hgb")
    return [{"targets": {"readiness": first}}, {"targets": {"readiness": second}}]


def test_pooled_report_averages_each_communitys_snapshot_means():
    header, rows, notes = bq._pooled_report(_runs(), [0, 1])
    by_scorer = {row[1]: row for row in rows}
    # model: ROC means 0.85 and 0.95 -> 0.900; p@k means 0.3 and 0.5 -> 0.400
    assert by_scorer["model"][2:4] == ["0.900", "0.400"]
    # oracle: ROC 0.95 and 1.0 -> 0.975; p@k 0.4 and 0.5 -> 0.450
    assert by_scorer["oracle"][2:4] == ["0.975", "0.450"]
    assert by_scorer["baseline:recency"][2:4] == ["0.750", "0.150"]
    # per-community ratios: 0.85 / 0.95, 0.95 / 1.0; 0.3 / 0.4, 0.5 / 0.5
    assert by_scorer["model"][4:] == ["0.895, 0.950", "0.750, 1.000"]
    assert len(header) == len(rows[0])
    (note,) = notes
    # 0.900 / 0.975 = 0.923 < 0.97 and 0.400 / 0.450 = 0.889 < 0.9; ECE mean 0.015
    assert "ROC-AUC 0.923, precision@k 0.889" in note
    assert "holdout ECE 0.0150 on average (0.0100, 0.0200)" in note
    assert "roc_auc >= 0.97 x oracle: NOT met" in note
    assert "precision_at_k >= 0.9 x oracle: NOT met" in note
    assert "beats every baseline: met" in note
    assert "ECE <= 0.02: met" in note
    assert "chosen: hgb, logreg" in note


def test_pooled_report_meets_a_target_the_pooled_ratio_reaches():
    runs = _runs()
    runs[1]["targets"]["readiness"] = _fig(([1.0], [0.6]), ([1.0], [0.5]), ([0.99], [0.7]),
                                           ece=0.05)
    _, _, (note,) = bq._pooled_report(runs, [0, 1])
    # ROC (0.85 + 1.0) / 2 = 0.925 over 0.975 -> 0.949; p@k 0.45 / 0.45 -> 1.000
    assert "ROC-AUC 0.949, precision@k 1.000" in note
    assert "precision_at_k >= 0.9 x oracle: met" in note
    # the baseline wins the second community's p@k (0.7 > 0.6) but not the pooled means:
    # ROC (0.7 + 0.99) / 2 = 0.845 < 0.925, p@k (0.1 + 0.7) / 2 = 0.400 < 0.450
    assert "beats every baseline: met" in note
    assert "ECE <= 0.02: NOT met" in note  # mean of 0.01 and 0.05


def _result(tenure, label, model_score, oracle_score):
    data = pd.DataFrame({"tenure_days": tenure, "x": model_score, "label": label})

    class Scores:
        def predict_proba(self, x):
            return np.column_stack([1 - x["x"].to_numpy(), x["x"].to_numpy()])

    return SimpleNamespace(
        holdout_data=data, feature_columns=("x",), model=Scores(),
        other_scores={"oracle": np.asarray(oracle_score, dtype=float)},
    )


def test_tenure_bands_split_the_holdout_by_days_since_joining():
    result = _result(
        tenure=[10, 20, 30, 100, 120, 400, 800],
        label=[1, 0, 0, 1, 0, 1, 1],
        # newcomers: the model ranks one of two pairs right (0.5), the oracle both (1.0)
        model_score=[0.5, 0.6, 0.1, 0.9, 0.2, 0.3, 0.3],
        oracle_score=[0.9, 0.2, 0.1, 0.8, 0.7, 0.3, 0.3],
    )
    bands = bq._tenure_bands(result)
    # 180-365 d is empty; 365-730 d and 730+ d have positives only: no ROC-AUC, left out
    assert list(bands) == ["0-90 d", "90-180 d"]
    assert bands["0-90 d"] == {"n": 3, "positives": 1, "model": 0.5, "oracle": 1.0}
    assert bands["90-180 d"] == {"n": 2, "positives": 1, "model": 1.0, "oracle": 1.0}


def test_tenure_bands_need_an_oracle():
    result = _result([10, 20], [1, 0], [0.9, 0.1], [0.9, 0.1])
    result.other_scores = {}
    assert bq._tenure_bands(result) == {}


def test_tenure_report_averages_bands_over_communities():
    runs = [
        {"targets": {"t": {"tenure_bands": {
            "0-90 d": {"n": 10, "positives": 2, "model": 0.7, "oracle": 0.8}}}}},
        {"targets": {"t": {"tenure_bands": {
            "0-90 d": {"n": 30, "positives": 4, "model": 0.8, "oracle": 0.9},
            "730+ d": {"n": 5, "positives": 1, "model": 0.9, "oracle": 0.9}}}}},
    ]
    _, rows = bq._tenure_report(runs)
    assert rows == [
        # model (0.7 + 0.8) / 2 = 0.75, oracle 0.85, ratio 0.882
        ["t", "0-90 d", "40", "6", "0.750", "0.850", "0.882"],
        ["t", "730+ d", "5", "1", "0.900", "0.900", "1.000"],
    ]


def test_main_refuses_zero_seeds():
    with pytest.raises(SystemExit):
        bq.main(["--seeds", "0", "--no-write"])


def test_pooled_report_sets_the_model_against_the_oracle_with_inferred_traits():
    runs = _runs()
    for run, pair in zip(runs, (([0.9, 0.9], [0.4, 0.4]), ([0.95], [0.45])), strict=True):
        run["targets"]["readiness"]["snapshots_eval"][bq.POSTERIOR] = {
            "roc_auc": pair[0], "precision_at_k": pair[1]}
    _, rows, notes = bq._pooled_report(runs, [0, 1])
    row = next(r for r in rows if r[1] == bq.POSTERIOR)
    # pooled (0.9 + 0.95) / 2 = 0.925 and (0.4 + 0.45) / 2 = 0.425; per seed over the oracle
    assert row[2:] == ["0.925", "0.425", "0.947, 0.950", "1.000, 0.900"]
    # 0.925 / 0.975 = 0.949 x oracle; the model 0.900 / 0.925 = 0.973 and 0.400 / 0.425 = 0.941
    assert "reaches ROC-AUC 0.949 x oracle and precision@k 0.944 x oracle" in notes[1]
    assert "the model reaches 0.973 and 0.941 of it" in notes[1]
