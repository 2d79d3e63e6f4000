"""End to end on a real community (SciPy's history, in ``../shared/realdata/scipy``).

As a user would run corecast on the history known at 1 January 2016: train with the
maintainer vocabulary, score, read the predictions and push them to the CSV sink. Before the
fallback and the pooled evaluation existed, this trained no readiness model and wrote an empty
readiness column with exit code 0.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.contract import load_tables, write_tables
from features.labels import LabelConfig, build_disengagement_labels, build_readiness_labels
from features.tables import cut_tables
from tests.pipelines.conftest import corecast_command

SCIPY = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "scipy"
AT = pd.Timestamp("2016-01-01")
LABELS = LabelConfig(
    horizon_days=365, active_within_days=365, readiness_horizon_days=730, core_role="maintainer"
)
OPTIONS = ("--core-role", "maintainer", "--readiness-horizon", "730d", "--horizon", "365d",
           "--active-within", "365d")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scipy_tables():
    if not SCIPY.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the real-data tables are missing: {SCIPY}")
        pytest.skip(f"no real-data tables at {SCIPY}")
    return load_tables(SCIPY)


def _corecast(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        corecast_command(*args), capture_output=True, text=True, timeout=600, check=False
    )


def test_a_real_community_gets_both_scores_with_their_method(scipy_tables, tmp_path):
    data = tmp_path / "scipy-2016"
    write_tables(cut_tables(scipy_tables, AT), data, fmt="csv")

    trained = _corecast("train", "--data", str(data), *OPTIONS)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "readiness" in trained.stdout and "validated" in trained.stdout

    out = tmp_path / "out"
    scored = _corecast("score", "--data", str(data), "--out", str(out))
    assert scored.returncode == 0, scored.stdout + scored.stderr
    predictions = pd.read_parquet(out / "predictions.parquet").set_index("member_id")

    readiness = build_readiness_labels(scipy_tables, AT, LABELS)
    disengagement = build_disengagement_labels(scipy_tables, AT, LABELS)
    scores = predictions.loc[readiness.index, "readiness_score"]
    risks = predictions.loc[disengagement.index, "disengagement_score"]
    assert scores.notna().all() and risks.notna().all()  # every eligible member, both scores
    # 6 future maintainers among 148 candidates; "commits in the last year" ranks them at 0.89
    assert roc_auc_score(readiness, scores) >= 0.85
    assert roc_auc_score(disengagement, risks) >= 0.75
    for target in ("readiness", "disengagement"):
        assert predictions.loc[scores.index, f"{target}_method"].notna().all()
        assert predictions[f"{target}_validated"].dropna().isin([True, False]).all()
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Readiness" in report and "validated" in report

    sink = tmp_path / "crm.csv"
    pushed = _corecast("push", "--predictions", str(out / "predictions.parquet"), "--to", "csv",
                       "--csv-path", str(sink))
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    crm = pd.read_csv(sink)
    assert {"corecast_readiness_method", "corecast_disengagement_method"} <= set(crm.columns)


def test_the_scheduled_monthly_job_runs_on_a_real_community_from_its_project_file(
    scipy_tables, tmp_path
):
    """A community without chapters, its vocabulary in corecast.toml, the monthly job as a
    schedule runs it: retrain with the maintainer role, score, report, push to a CSV file."""
    data = tmp_path / "scipy-2016"
    write_tables(cut_tables(scipy_tables, AT), data, fmt="csv")
    out = tmp_path / "out"
    config = tmp_path / "corecast.toml"
    config.write_text(
        f'[data]\nsource = "{data}"\nout = "{out}"\n\n'
        '[labels]\ncore_role = "maintainer"\nhorizon = "365d"\nreadiness_horizon = "730d"\n'
        'active_within = "365d"\n'
    )
    ran = _corecast("--config", str(config), "run", "--retrain")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    said = " ".join(ran.stderr.split())
    assert "train readiness: promoted v1" in said and "Traceback" not in said
    predictions = pd.read_parquet(out / "predictions.parquet")
    readiness = build_readiness_labels(scipy_tables, AT, LABELS)
    assert predictions.set_index("member_id").loc[readiness.index, "readiness_score"].notna().all()
    assert predictions["chapter_id"].isna().all()  # no chapters in this community
    assert len(list((out / "crm-exports").iterdir())) == 1
