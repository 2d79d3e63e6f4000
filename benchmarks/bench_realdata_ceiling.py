"""Benchmark: how far plain models on hand-built features get on the SciPy protocol.

An independent check of what the SciPy activity log can tell, outside corecast's features and
training: features are computed here from the raw tables with pandas, snapshots every 30 days
from the first activity, and each model family is trained on every snapshot whose outcome was
known on the training date (1 January, 2014-2022) and judged on 1 January and 1 July of that
year, with the labels and eligibility of :mod:`benchmarks.bench_realdata` (the same 18 dates).

Feature sets (all from the activity log and the roles table, as of the snapshot):

- ``counts``: the README's kind of model: days since the first and the last activity,
  activities ever and in the last 90 / 365 days, commits, merges, active months and distinct
  counterparts in the last 365 days.
- ``counts+breaks``: with the member's longest and usual break between active days and the
  current silence against them.
- ``wide``: everything computed here (monthly activity counts of the last year, 30 to 730 day
  windows, pull requests, direct commits, areas, counterparts still active, role held).

Models: logistic regressions (log1p, standardised) at three strengths, gradient-boosted trees.
The table says, per target, the mean per-date ROC-AUC of each, beside corecast's rules and the
targets of the real-community issue.

Usage::

    python -m benchmarks.bench_realdata_ceiling          # about a minute per target

Figures are appended to ``benchmarks/results/realdata_ceiling.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from benchmarks.bench_realdata import (
    DEFAULT_DATA,
    LABEL_BUILDERS,
    PROTOCOL_LABELS,
    PROTOCOL_YEARS,
    REPO,
    TARGETS,
    markdown_table,
    protocol_dates,
    publish,
)
from features.labels import label_horizon_days
from features.tables import Tables

DEFAULT_OUT = REPO / "benchmarks" / "results" / "realdata_ceiling.md"
#: Days between training snapshots.
EVERY_DAYS = 30
#: Mean ROC-AUC targets of the real-community issue.
GOALS = {"readiness": 0.92, "disengagement": 0.88}
COUNTS = ["first", "last", "n_ever", "n_90", "n_365", "c_365", "m_365", "active_months_365",
          "cp_365"]
BREAKS = ["longest_break", "usual_break", "silence_vs_longest", "silence_vs_usual"]
DAY = pd.Timedelta(days=1)


def _windows(f: pd.DataFrame, past: pd.DataFrame) -> None:
    """Counts per look-back window, type and kind of event, and per month of the last year."""
    for w in (30, 90, 180, 365, 730):
        q = past[past["age"] < w]
        g = q.groupby("member_id")
        f[f"n_{w}"] = g.size()
        f[f"ev_{w}"] = g["event_id"].nunique()
        f[f"c_{w}"] = q[q["activity_type"] == "commit"].groupby("member_id").size()
        f[f"m_{w}"] = q[q["activity_type"] == "merge"].groupby("member_id").size()
        f[f"pr_{w}"] = q[q["pr"]].groupby("member_id")["event_id"].nunique()
        f[f"direct_{w}"] = q[~q["pr"]].groupby("member_id").size()
    for k in range(12):
        q = past[(past["age"] >= 30 * k) & (past["age"] < 30 * (k + 1))]
        f[f"month_{k}"] = q.groupby("member_id").size()


def _breaks(f: pd.DataFrame, past: pd.DataFrame) -> None:
    """Longest and usual days between active days, and the current silence against them."""
    days = past.drop_duplicates(["member_id", "day"]).sort_values(["member_id", "day"])
    gap = days.groupby("member_id")["day"].diff().dt.days
    g = gap.groupby(days["member_id"])
    f["longest_break"] = g.max()
    f["usual_break"] = g.mean()
    f[["longest_break", "usual_break"]] = f[["longest_break", "usual_break"]].fillna(0)
    f["silence_vs_longest"] = f["last"] / (f["longest_break"] + 30)
    f["silence_vs_usual"] = f["last"] / (f["usual_break"] + 7)


def snapshot_features(acts: pd.DataFrame, roles: pd.DataFrame, at: pd.Timestamp,
                      members: pd.Index) -> pd.DataFrame:
    """Every feature of this module for ``members`` at ``at`` (rows strictly before it)."""
    past = acts[(acts["occurred_at"] < at) & acts["member_id"].isin(members)].copy()
    past["age"] = (at - past["occurred_at"]) / DAY
    g = past.groupby("member_id")
    f = pd.DataFrame(index=pd.Index(members, name="member_id"))
    f["last"], f["first"], f["n_ever"] = g["age"].min(), g["age"].max(), g.size()
    _windows(f, past)
    recent = past[past["age"] < 365]
    f["active_months_365"] = recent.groupby("member_id")["month"].nunique()
    f["active_months_ever"] = g["month"].nunique()
    f["cp_365"] = recent.groupby("member_id")["counterpart_id"].nunique()
    f["areas"] = past[~past["pr"]].groupby("member_id")["area"].nunique()
    active_90 = set(acts.loc[(acts["occurred_at"] < at) & (acts["occurred_at"] >= at - 90 * DAY),
                             "member_id"])
    ties = recent.dropna(subset=["counterpart_id"])
    f["cp_active_share"] = ties["counterpart_id"].isin(active_90).groupby(
        ties["member_id"]).mean()
    core = roles.loc[roles["started_at"] < at, "member_id"]
    f["role_held"] = f.index.isin(core).astype(float)
    f = f.fillna(0.0)
    _breaks(f, past)
    return f


def prepared_activities(tables: Tables) -> pd.DataFrame:
    """The activity log with the helper columns the features read (UTC-naive times)."""
    acts = tables.activities.copy()
    acts["occurred_at"] = acts["occurred_at"].dt.tz_localize(None)
    acts["day"] = acts["occurred_at"].dt.normalize()
    acts["month"] = acts["occurred_at"].dt.to_period("M")
    event = acts["event_id"].fillna("").astype(str)
    acts["pr"] = event.str.startswith("pr-")
    acts["area"] = event.str.split(":").str[0]
    return acts


def labelled(tables: Tables, acts: pd.DataFrame, roles: pd.DataFrame, target: str,
             at: pd.Timestamp) -> pd.DataFrame:
    """Features and ``label`` of the eligible members at ``at``."""
    labels = LABEL_BUILDERS[target](tables, at, PROTOCOL_LABELS)
    frame = snapshot_features(acts, roles, at.tz_localize(None), labels.index)
    return frame.assign(label=labels.astype(int).to_numpy(), at=at)


def _log_lr(c: float) -> Callable[[], object]:
    return lambda: make_pipeline(
        FunctionTransformer(lambda x: np.log1p(np.clip(x, 0, None))), StandardScaler(),
        LogisticRegression(C=c, max_iter=3000),
    )


def _trees() -> object:
    return HistGradientBoostingClassifier(max_depth=3, max_iter=150, learning_rate=0.05,
                                          min_samples_leaf=40, l2_regularization=5.0)


def variants(wide: list[str]) -> dict[str, tuple[Callable[[], object], list[str]]]:
    """Model family and feature set of every variant judged."""
    sets = {"counts": COUNTS, "counts+breaks": COUNTS + BREAKS, "wide": wide}
    out: dict[str, tuple[Callable[[], object], list[str]]] = {}
    for name, columns in sets.items():
        for c in (0.01, 0.1, 1.0):
            out[f"logistic regression C={c:g}, {name}"] = (_log_lr(c), columns)
        out[f"gradient-boosted trees, {name}"] = (_trees, columns)
    return out


def judge_target(tables: Tables, target: str, years: list[int]) -> dict[str, list[float]]:
    """Per-date ROC-AUC of every variant on one target (dates without both classes skipped)."""
    acts = prepared_activities(tables)
    roles = tables.roles.assign(started_at=tables.roles["started_at"].dt.tz_localize(None))
    roles = roles[roles["role"] == PROTOCOL_LABELS.core_role]
    horizon = label_horizon_days(target, PROTOCOL_LABELS) * DAY
    start = acts["occurred_at"].min().normalize().tz_localize("UTC") + 365 * DAY
    last_train = max(pd.Timestamp(y, 1, 1, tz="UTC") for y in years) - horizon
    grid = pd.date_range(start, last_train, freq=f"{EVERY_DAYS}D")
    train = pd.concat([labelled(tables, acts, roles, target, at) for at in grid])
    wide = [c for c in train.columns if c not in ("label", "at")]
    scores: dict[str, list[float]] = {}
    for fit_date, dates in protocol_dates(years):
        fit_date = fit_date.tz_localize("UTC")
        rows = train[train["at"] + horizon <= fit_date]
        for when in dates:
            test = labelled(tables, acts, roles, target, when.tz_localize("UTC"))
            if test["label"].nunique() < 2 or rows["label"].sum() < 2:
                continue
            for name, (make, columns) in variants(wide).items():
                model = make().fit(rows[columns], rows["label"])
                p = model.predict_proba(test[columns])[:, 1]
                scores.setdefault(name, []).append(roc_auc_score(test["label"], p))
    return scores


def table(target: str, scores: dict[str, list[float]]) -> str:
    """Markdown table of one target: variant, mean ROC-AUC, dates, best and worst date."""
    rows = [
        [name, f"{np.mean(v):.3f}", str(len(v)), f"{min(v):.3f}", f"{max(v):.3f}"]
        for name, v in sorted(scores.items(), key=lambda kv: -np.mean(kv[1]))
    ]
    best = max(np.mean(v) for v in scores.values())
    verdict = (f"Best mean {best:.3f}; the issue's target is {GOALS[target]:.2f} "
               f"({'reached' if best >= GOALS[target] else 'not reached'} by any variant).")
    header = ["variant", "mean ROC-AUC", "dates", "worst date", "best date"]
    return f"### {target}\n\n{markdown_table(header, rows)}\n\n{verdict}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    args = parser.parse_args(argv)
    if not (args.data / "members.csv").is_file():
        print(f"bench_realdata_ceiling: no SciPy data at {args.data}; pass --data PATH",
              file=sys.stderr)
        return 2
    from features.contract import load_tables

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    t0 = time.perf_counter()
    tables = load_tables(str(args.data))
    blocks = [table(t, judge_target(tables, t, list(PROTOCOL_YEARS))) for t in args.targets]
    publish(args.out, "benchmarks.bench_realdata_ceiling", argv, blocks,
            time.perf_counter() - t0, title="SciPy: plain models on hand-built features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
