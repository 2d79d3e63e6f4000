"""Benchmark: corecast on a real community (SciPy) and on small, short simulated communities.

**SciPy** (``../shared/realdata/scipy``, see its README): on each 1 January from 2014 to 2022
the tables are cut at that date (:func:`features.tables.cut_tables`) and both targets are trained
as ``corecast train --core-role maintainer --readiness-horizon 730d --horizon 365d
--active-within 365d`` would, each training in a fresh corecast home. The champions then score
1 January and 1 July of that year on the tables cut at the scoring date. Every scoring date is
judged on its own, with the eligible members and labels of the full tables
(:func:`features.labels.build_readiness_labels` / ``build_disengagement_labels``): ROC-AUC and
average precision per date, then the mean over dates. A member without a score ranks last; a
date without any score counts as ROC-AUC 0.5 and AP = prevalence; a date without both classes is
skipped for that target. Simple rules computed from the cut activity log are judged the same way,
and once more with the README's own eligibility, to check the README's figures.

**Simulated** small and short communities (300 members x 0.75 year, 800 x 2 years, 300 x 1 year):
trained with the default settings (``corecast train --data DIR``), scored at the default date;
reported per target: status, method, the share of eligible members that got a score, and the
holdout metrics (with intervals when training reports them).

Usage::

    python -m benchmarks.bench_realdata                       # everything (a few minutes)
    python -m benchmarks.bench_realdata --years 2016 2020 --skip-simulated
    python -m benchmarks.bench_realdata --skip-scipy --seeds 0 1

Figures are appended to ``benchmarks/results/realdata.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shlex
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from features.labels import (
    LabelConfig,
    build_disengagement_labels,
    build_readiness_labels,
    select_disengagement_eligible,
    select_readiness_eligible,
)
from features.tables import Tables, cut_tables

__all__ = [
    "PROTOCOL_LABELS",
    "RULES",
    "protocol_dates",
    "rule_scores",
    "judge",
    "readme_eligible",
    "evaluate_target",
    "method_of",
    "outcome_method",
    "holdout_summary",
    "coverage",
    "mean_over_dates",
    "verdicts",
    "sim_config",
    "eligible_at",
    "run_scipy",
    "run_simulated",
    "main",
]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "realdata" / "scipy"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "realdata.md"
TARGETS = ("readiness", "disengagement")
PROTOCOL_YEARS = tuple(range(2014, 2023))
#: The README's figures average 17 dates: 2014-01-01 .. 2022-01-01 (not 2022-07-01).
README_LAST = pd.Timestamp("2022-01-01")
#: The settings of the protocol (``--core-role maintainer --readiness-horizon 730d --horizon
#: 365d --active-within 365d``; readiness eligibility keeps its default 365 days).
PROTOCOL_LABELS = LabelConfig(
    horizon_days=365, active_within_days=365, readiness_horizon_days=730, core_role="maintainer"
)
LABEL_BUILDERS: dict[str, Callable[..., pd.Series]] = {
    "readiness": build_readiness_labels,
    "disengagement": build_disengagement_labels,
}
ELIGIBLE: dict[str, Callable[..., pd.Index]] = {
    "readiness": select_readiness_eligible,
    "disengagement": select_disengagement_eligible,
}
#: Rule name -> (target, description); higher rule score = more likely positive.
RULES: dict[str, tuple[str, str]] = {
    "commits_365d": ("readiness", "commits in the last 365 days"),
    "events_365d": ("readiness", "distinct event_id in the last 365 days"),
    "pull_requests_365d": ("readiness", "distinct pull requests (pr-*) in the last 365 days"),
    "days_since_last": ("disengagement", "days since last activity"),
    "fewer_commits": ("disengagement", "fewer all-time commits"),
}
#: The README's (ROC-AUC, AP) of its rules.
README_FIGURES = {
    "commits_365d": (0.888, 0.371),
    "pull_requests_365d": (0.842, 0.359),
    "days_since_last": (0.782, 0.892),
    "fewer_commits": (0.815, 0.899),
}
#: Goals on the mean per-date figures of the model.
GOALS: dict[str, dict[str, float]] = {
    "readiness": {"roc_auc": 0.92, "ap": 0.40},
    "disengagement": {"roc_auc": 0.88},
}
#: Simulated cases: (name, members, years).
SIM_CASES = (("a", 300, 0.75), ("b", 800, 2.0), ("c", 300, 1.0))
COVERAGE_GOAL = 0.99
HOLDOUT_METRICS = ("roc_auc", "pr_auc", "precision_at_k")
_QUIET_LOGGERS = ("mlflow", "alembic", "prefect", "httpx", "urllib3", "git")


# --- pure helpers ----------------------------------------------------------------------------


def protocol_dates(years: Iterable[int]) -> list[tuple[pd.Timestamp, list[pd.Timestamp]]]:
    """Training date (1 January) and its scoring dates (1 January, 1 July) per year."""
    return [
        (pd.Timestamp(year, 1, 1), [pd.Timestamp(year, 1, 1), pd.Timestamp(year, 7, 1)])
        for year in sorted(set(years))
    ]


def rule_scores(activities: pd.DataFrame, at: pd.Timestamp, window_days: int = 365) -> pd.DataFrame:
    """Score of every rule of :data:`RULES` at ``at`` from the activity log (rows before ``at``).

    Returns:
        One row per member with an activity before ``at`` (index ``member_id``), one column per
        rule; counts are 0 when the member has none.
    """
    before = activities[activities["occurred_at"] < at]
    recent = before[before["occurred_at"] >= at - pd.Timedelta(days=window_days)]
    commits = before[before["activity_type"] == "commit"]
    recent_commits = recent[recent["activity_type"] == "commit"]
    pulls = recent[recent["event_id"].str.startswith("pr-", na=False)]
    last = before.groupby("member_id")["occurred_at"].max()
    out = pd.DataFrame(index=last.index)
    out["commits_365d"] = recent_commits.groupby("member_id").size()
    out["events_365d"] = recent.groupby("member_id")["event_id"].nunique()
    out["pull_requests_365d"] = pulls.groupby("member_id")["event_id"].nunique()
    out["days_since_last"] = (at - last) / pd.Timedelta(days=1)
    out["fewer_commits"] = -commits.groupby("member_id").size()
    counts = ["commits_365d", "events_365d", "pull_requests_365d", "fewer_commits"]
    out[counts] = out[counts].fillna(0.0).astype(float)
    out.index.name = "member_id"
    return out


def judge(labels: pd.Series, scores: pd.Series | None) -> dict[str, float] | None:
    """ROC-AUC, average precision and coverage of ``scores`` on the eligible ``labels``.

    A member without a score ranks below every scored member; without any score, ROC-AUC is 0.5
    and AP the prevalence.

    Returns:
        ``{"roc_auc", "ap", "coverage"}``, or ``None`` when the labels lack a class.
    """
    y = labels.astype(int)
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        return None
    s = pd.Series(np.nan, index=y.index) if scores is None else scores.reindex(y.index)
    s = s.astype(float)
    share = coverage(y.index, s)
    if s.isna().all():
        return {"roc_auc": 0.5, "ap": positives / len(y), "coverage": share}
    s = s.fillna(s.min() - 1.0)
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "ap": float(average_precision_score(y, s)),
        "coverage": share,
    }


def coverage(eligible: pd.Index, scores: pd.Series | None) -> float:
    """Share of ``eligible`` members with a (non-missing) score in ``scores``."""
    if len(eligible) == 0:
        return float("nan")
    if scores is None:
        return 0.0
    return float(scores.reindex(eligible).notna().mean())


def readme_eligible(labels: pd.Series, target: str, tables: Tables, at: pd.Timestamp) -> pd.Series:
    """The labels restricted to the README's eligibility (what its rule figures used).

    Readiness: members who ever held a core role spell started before ``at`` are dropped (the
    README's "not a maintainer then"; corecast counts former maintainers as eligible).
    Disengagement: only members who authored a commit in the 365 days before ``at`` (corecast
    counts any activity, merges included).
    """
    if target == "readiness":
        roles = tables.roles
        if roles is None:
            return labels
        ever = roles.loc[
            (roles["role"] == PROTOCOL_LABELS.core_role) & (roles["started_at"] < at), "member_id"
        ]
        return labels[~labels.index.isin(ever)]
    acts = tables.activities
    window = (acts["occurred_at"] < at) & (
        acts["occurred_at"] >= at - pd.Timedelta(days=PROTOCOL_LABELS.active_within_days)
    )
    committers = acts.loc[window & (acts["activity_type"] == "commit"), "member_id"]
    return labels[labels.index.isin(committers)]


def outcome_method(outcome: object) -> str:
    """How a training outcome ranks: ``outcome.method`` or else its result's, with validation.

    Returns ``""`` when neither says (e.g. nothing was trained).
    """
    result = getattr(outcome, "result", None)
    method = getattr(outcome, "method", "") or getattr(result, "method", "") or ""
    validated = getattr(outcome, "validated", getattr(result, "validated", None))
    if not method or validated is None:
        return str(method)
    return f"{method} (validated={validated})"


def _distinct(frame: pd.DataFrame, column: str) -> str:
    """The distinct non-missing values of ``column``, sorted and comma-joined."""
    values = frame[column].dropna().astype(str).unique()
    return ",".join(sorted(values))


def method_of(predictions: pd.DataFrame | None, target: str) -> tuple[str, str]:
    """Method and validation of ``target``'s scores: ``<target>_method`` / ``_validated``.

    Without those columns the method is ``"model"`` (``"-"`` when nobody got a score) and the
    validation is empty.
    """
    if predictions is None:
        return "-", ""
    scored = predictions[predictions[f"{target}_score"].notna()]
    method_col, valid_col = f"{target}_method", f"{target}_validated"
    if method_col in predictions.columns:
        method = _distinct(scored, method_col) or "-"
    else:
        method = "model" if len(scored) else "-"
    validated = _distinct(scored, valid_col) if valid_col in predictions.columns else ""
    return method, validated


def evaluate_target(
    labels: pd.Series, predictions: pd.DataFrame | None, rules: pd.DataFrame, target: str
) -> dict:
    """Figures of one target at one date: the model's, its method, and every rule's."""
    scores = None
    if predictions is not None:
        scores = predictions.set_index("member_id")[f"{target}_score"]
    method, validated = method_of(predictions, target)
    return {
        "eligible": len(labels),
        "positives": int(labels.astype(int).sum()),
        "model": judge(labels, scores),
        "coverage": coverage(labels.index, scores),
        "method": method,
        "validated": validated,
        "rules": {
            name: judge(labels, rules[name])
            for name, (rule_target, _) in RULES.items()
            if rule_target == target
        },
    }


def holdout_summary(metrics: Mapping[str, float] | None) -> str:
    """The ``holdout.*`` figures of roc_auc, pr_auc and precision_at_k, with any interval.

    ``holdout.roc_auc`` 0.9 with ``holdout.roc_auc_ci_low`` / ``_ci_high`` reads
    ``roc_auc 0.900 [0.800, 0.950]``; other ``holdout.<metric>_*`` keys follow as ``name=value``.
    """
    metrics = metrics or {}
    parts = []
    for name in HOLDOUT_METRICS:
        key = f"holdout.{name}"
        extra = sorted(k for k in metrics if k.startswith(f"{key}_"))
        if key not in metrics and not extra:
            continue
        text = f"{name} {metrics[key]:.3f}" if key in metrics else name
        interval = (f"{key}_ci_low", f"{key}_ci_high")
        rest = extra
        if all(k in metrics for k in interval):
            text += f" [{metrics[interval[0]]:.3f}, {metrics[interval[1]]:.3f}]"
            rest = [k for k in extra if k not in interval]
        text += "".join(f" {k[len(key) + 1:]}={metrics[k]:.3f}" for k in rest)
        parts.append(text)
    return "; ".join(parts) or "-"


def mean_over_dates(
    records: Sequence[dict], target: str, scorer: str, last: pd.Timestamp | None = None,
    key: str = "figures",
) -> tuple[float, float, int]:
    """Mean ROC-AUC and AP of ``scorer`` (``"model"`` or a rule) over the judged dates.

    Dates without both classes (``None`` figures) are left out; ``last`` drops later dates.

    Returns:
        ``(mean ROC-AUC, mean AP, dates averaged)``; NaN means when no date counts.
    """
    values = []
    for rec in records:
        if last is not None and rec["date"] > last:
            continue
        fig = rec[key][target]
        got = fig["model"] if scorer == "model" else fig["rules"].get(scorer)
        if got is not None:
            values.append((got["roc_auc"], got["ap"]))
    if not values:
        return float("nan"), float("nan"), 0
    arr = np.array(values, dtype=float)
    return float(arr[:, 0].mean()), float(arr[:, 1].mean()), len(values)


def verdicts(means: Mapping[str, tuple[float, float, int]]) -> list[str]:
    """One line per goal of :data:`GOALS`: the model's mean figure and met / NOT met."""
    lines = []
    for target, goals in GOALS.items():
        if target not in means:
            continue
        roc, ap, n = means[target]
        for metric, goal in goals.items():
            value = roc if metric == "roc_auc" else ap
            label = "ROC-AUC" if metric == "roc_auc" else "AP"
            met = "met" if value >= goal else "NOT met"
            lines.append(f"{target} mean {label} {value:.3f} >= {goal}: {met} ({n} dates)")
    return lines


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _f(value: float | None, digits: int = 3) -> str:
    """A figure with ``digits`` decimals, ``-`` when missing."""
    return "-" if value is None or value != value else f"{value:.{digits}f}"


# --- training and scoring in a fresh corecast home ---------------------------------------------


@contextlib.contextmanager
def fresh_home() -> Iterator[Path]:
    """A temporary ``CORECAST_HOME`` (and no ``MLFLOW_TRACKING_URI``) for one training run."""
    saved = {k: os.environ.get(k) for k in ("CORECAST_HOME", "MLFLOW_TRACKING_URI")}
    with tempfile.TemporaryDirectory(prefix="corecast-realdata-") as tmp:
        os.environ["CORECAST_HOME"] = tmp
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        try:
            yield Path(tmp)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence MLflow / Alembic chatter and warnings (errors still raise)."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
            contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield


def _where(exc: BaseException) -> str:
    """`` at path:line`` of the innermost frame of ``exc`` in this repository, else ``""``."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith(str(REPO)) and "/.venv/" not in f.filename]
    if not frames:
        return ""
    return f" at {Path(frames[-1].filename).relative_to(REPO)}:{frames[-1].lineno}"


def _failed(target: str, exc: BaseException) -> SimpleNamespace:
    """An outcome-like record of a target whose training raised.

    The status is what ``train_and_register`` reports for a target it was not asked for by
    name (``unavailable`` / ``insufficient_data``), else ``error``.
    """
    from features.errors import InsufficientDataError, TargetUnavailable

    status = "error"
    if isinstance(exc, TargetUnavailable):
        status = "unavailable"
    elif isinstance(exc, InsufficientDataError):
        status = "insufficient_data"
    message = str(exc) if status != "error" else f"{type(exc).__name__}{_where(exc)}: {exc}"
    return SimpleNamespace(target=target, status=status, message=message, metrics={}, method="")


def train_targets(source: Tables | str, labels: LabelConfig) -> dict[str, object]:
    """Train both targets like ``corecast train`` (in the current home), never raising.

    When training both together raises, each target is trained alone so one failure does not
    hide the other; a target that still raises gets an outcome with status ``"error"``.
    """
    from models.workflow import train_and_register

    try:
        with _quiet():
            return {o.target: o for o in train_and_register(source, labels=labels)}
    except Exception:  # noqa: BLE001 - fall back to one target at a time
        pass
    outcomes: dict[str, object] = {}
    for target in TARGETS:
        try:
            with _quiet():
                (outcomes[target],) = train_and_register(source, [target], labels=labels)
        except Exception as exc:  # noqa: BLE001 - reported as a row
            outcomes[target] = _failed(target, exc)
    return outcomes


def score_tables(
    models: tuple[object, object] | None, tables: Tables, as_of: pd.Timestamp | None
) -> tuple[pd.DataFrame | None, str]:
    """Predictions of ``score_members`` with the loaded champions, or ``(None, error)``."""
    from serving.score import score_members

    if models is None:
        return None, "no model could be loaded"
    try:
        with _quiet():
            result = score_members(tables, as_of=as_of, readiness=models[0],
                                   disengagement=models[1])
        return result.predictions, ""
    except Exception as exc:  # noqa: BLE001 - reported as a row
        return None, f"{type(exc).__name__}{_where(exc)}: {exc}"


def load_models() -> tuple[tuple[object, object] | None, str]:
    """The champions of the current home (``load_scoring_models``), or ``(None, error)``."""
    from models.registry import load_scoring_models

    try:
        with _quiet():
            return load_scoring_models(), ""
    except Exception as exc:  # noqa: BLE001 - reported as a row
        return None, f"{type(exc).__name__}: {exc}"


# --- SciPy protocol ----------------------------------------------------------------------------


def judge_date(full: Tables, cut: Tables, when: pd.Timestamp,
               predictions: pd.DataFrame | None, error: str) -> dict:
    """Figures of both targets at one scoring date (corecast and README eligibility)."""
    rules = rule_scores(cut.activities, when)
    rec: dict = {"date": when, "error": error, "figures": {}, "readme": {}}
    for target in TARGETS:
        labels = LABEL_BUILDERS[target](full, when, PROTOCOL_LABELS)
        rec["figures"][target] = evaluate_target(labels, predictions, rules, target)
        narrow = readme_eligible(labels, target, cut, when)
        rec["readme"][target] = evaluate_target(narrow, None, rules, target)
    return rec


def _training_rows(
    when: pd.Timestamp, outcomes: Mapping[str, object], seconds: float
) -> list[list[str]]:
    """Rows of the training table: one per target of a training date."""
    return [
        [f"{when:%Y-%m-%d}", target, o.status, outcome_method(o),
         (o.message or "")[:100].replace("|", "/").replace("\n", " "), f"{seconds:.0f}"]
        for target, o in outcomes.items()
    ]


def run_scipy(full: Tables, years: Iterable[int]) -> dict:
    """Train at each protocol date, score its two dates and judge them.

    Returns:
        ``{"records": [per scoring date], "trainings": [table rows]}``.
    """
    records: list[dict] = []
    trainings: list[list[str]] = []
    for train_date, score_dates in protocol_dates(years):
        with fresh_home():
            t0 = time.perf_counter()
            outcomes = train_targets(cut_tables(full, train_date), PROTOCOL_LABELS)
            trainings += _training_rows(train_date, outcomes, time.perf_counter() - t0)
            models, load_error = load_models()
            for when in score_dates:
                cut = cut_tables(full, when)
                predictions, error = score_tables(models, cut, when)
                records.append(judge_date(full, cut, when, predictions, error or load_error))
        for row in trainings[-len(outcomes):]:
            print("  train " + " | ".join(row), flush=True)
    return {"records": records, "trainings": trainings}


def scipy_date_rows(records: Sequence[dict]) -> list[list[str]]:
    """Per-date table: target, date, eligible, positives, model ROC-AUC, AP, method, coverage."""
    rows = []
    for target in TARGETS:
        for rec in records:
            fig = rec["figures"][target]
            model = fig["model"]
            rows.append([
                target, f"{rec['date']:%Y-%m-%d}", str(fig["eligible"]), str(fig["positives"]),
                _f(model["roc_auc"]) if model else "skipped",
                _f(model["ap"]) if model else "skipped",
                fig["method"] + (f" ({rec['error'][:60]})" if rec["error"] else ""),
                fig["validated"] or "-", _f(100 * fig["coverage"], 0) + " %",
            ])
    return rows


def scipy_summary_rows(records: Sequence[dict]) -> list[list[str]]:
    """Mean per-date figures of the model and the rules, all dates and the README's 17."""
    rows = []
    for target in TARGETS:
        scorers = ["model"] + [n for n, (t, _) in RULES.items() if t == target]
        for scorer in scorers:
            roc, ap, n = mean_over_dates(records, target, scorer)
            roc17, ap17, n17 = mean_over_dates(records, target, scorer, last=README_LAST)
            name = "model" if scorer == "model" else f"rule: {RULES[scorer][1]}"
            rows.append([target, name, _f(roc), _f(ap), str(n), _f(roc17), _f(ap17), str(n17)])
    return rows


def readme_check_rows(records: Sequence[dict]) -> list[list[str]]:
    """The rules on the README's dates, with corecast's and the README's eligibility."""
    rows = []
    for rule, (paper_roc, paper_ap) in README_FIGURES.items():
        target = RULES[rule][0]
        ours = mean_over_dates(records, target, rule, last=README_LAST)
        theirs = mean_over_dates(records, target, rule, last=README_LAST, key="readme")
        rows.append([
            target, RULES[rule][1], f"{paper_roc:.3f} / {paper_ap:.3f}",
            f"{_f(ours[0])} / {_f(ours[1])}", f"{_f(theirs[0])} / {_f(theirs[1])}",
        ])
    return rows


def skipped_dates(records: Sequence[dict]) -> list[str]:
    """Lines naming the dates skipped per target (no positive or no negative)."""
    lines = []
    for target in TARGETS:
        dates = [f"{r['date']:%Y-%m-%d}" for r in records if r["figures"][target]["model"] is None]
        if dates:
            lines.append(f"{target}: skipped (one class only) at {', '.join(dates)}")
    return lines


# --- simulated communities ---------------------------------------------------------------------


def eligible_at(tables: Tables, as_of: pd.Timestamp, target: str,
                labels: LabelConfig) -> pd.Index:
    """Members eligible for ``target`` at ``as_of`` (``select_*_eligible``).

    Data without any core-role spell has no readiness target, yet its members are readiness
    candidates all the same: then everyone active within ``readiness_active_within_days`` (or
    everyone joined, when that is ``None``) counts, since nobody holds the role.
    """
    from features.errors import TargetUnavailable

    try:
        return ELIGIBLE[target](tables, as_of, labels)
    except TargetUnavailable:
        if target != "readiness":
            raise
    days = labels.readiness_active_within_days or 10**6
    return select_disengagement_eligible(tables, as_of, LabelConfig(active_within_days=days))


def _sim_rows(case: str, members: int, years: float, seed: int, folder: str) -> list[list[str]]:
    """Train and score one simulated community (in the current home); one row per target."""
    from features.contract import load_tables
    from serving.score import default_as_of

    labels = LabelConfig()
    outcomes = train_targets(folder, labels)
    tables = load_tables(folder)
    models, load_error = load_models()
    predictions, error = score_tables(models, tables, None)
    as_of = default_as_of(tables)
    rows = []
    for target in TARGETS:
        o = outcomes.get(target) or _failed(target, RuntimeError("no outcome"))
        eligible = eligible_at(tables, as_of, target, labels)
        scores = None if predictions is None else (
            predictions.set_index("member_id")[f"{target}_score"])
        method, validated = method_of(predictions, target)
        share = coverage(eligible, scores)
        scored = f"{_f(100 * share, 1)} % ({'met' if share >= COVERAGE_GOAL else 'NOT met'})"
        note = (o.message or "") if o.status not in ("promoted", "refused") else ""
        note = (note or error or load_error).replace(folder, "DIR")
        note = note.replace("|", "/").replace("\n", " ")[:100]
        rows.append([
            f"{case}: {members} x {years:g} y, seed {seed}", target, o.status,
            outcome_method(o) or "-", method, validated or "-",
            str(len(eligible)), scored, holdout_summary(o.metrics),
            note,
        ])
    return rows


def sim_config(members: int, years: float, seed: int) -> object:
    """The ``SimulationConfig`` of a case, with as many truth dates (default 6) as fit."""
    from simulator.community import SimulationConfig
    from simulator.model import truth_dates_that_fit

    return SimulationConfig(
        members=members, years=years, seed=seed, truth_dates=truth_dates_that_fit(years)
    )


def _sim_case(case: str, members: int, years: float, seed: int) -> list[list[str]]:
    """Simulate one community into a temporary folder and home; rows of :func:`_sim_rows`."""
    from simulator.community import SimulationConfig, simulate_community, write_simulation

    name = f"{case}: {members} x {years:g} y, seed {seed}"
    with tempfile.TemporaryDirectory(prefix="corecast-sim-") as data, fresh_home():
        try:
            config = sim_config(members, years, seed)
            with _quiet():
                write_simulation(simulate_community(config), data)
            rows = _sim_rows(case, members, years, seed, data)
        except Exception as exc:  # noqa: BLE001 - the benchmark goes on
            note = f"{type(exc).__name__}: {exc}".replace("|", "/")[:120]
            return [[name, t, "error", "-", "-", "-", "-", "0.0 % (NOT met)", "-", note]
                    for t in TARGETS]
    if config.truth_dates < SimulationConfig().truth_dates:
        for row in rows:
            row[-1] = f"simulated with {config.truth_dates} truth dates. {row[-1]}".strip()
    return rows


def run_simulated(cases: Sequence[tuple[str, int, float]], seeds: Sequence[int]) -> list[list[str]]:
    """Simulate, train and score every case x seed, each in its own folder and home."""
    rows: list[list[str]] = []
    for case, members, years in cases:
        for seed in seeds:
            rows += _sim_case(case, members, years, seed)
            for row in rows[-2:]:
                print("  sim " + " | ".join(row), flush=True)
    return rows


# --- command line -------------------------------------------------------------------------------

SUMMARY_HEADER = ["target", "scorer", "ROC-AUC", "AP", "dates", "ROC-AUC (README 17)",
                  "AP (README 17)", "dates (README 17)"]
DATE_HEADER = ["target", "date", "eligible", "positives", "model ROC-AUC", "AP", "method",
               "validated", "coverage"]
TRAIN_HEADER = ["trained at", "target", "status", "method", "message (100 chars)", "s"]
README_HEADER = ["target", "rule", "README", "ours: corecast eligibility",
                 "ours: README eligibility"]
SIM_HEADER = ["community", "target", "status", "train method", "score method", "validated",
              "eligible", "scored", "holdout", "note"]


#: Quarterly snapshots of the whole labelled history judge each feature family's signal.
FAMILY_EVERY_DAYS = 91
#: The simulated community the real one is compared with.
FAMILY_SIM = (2000, 3.0)


def feature_signal(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Each column's mean per-date ROC-AUC, direction-free (``max(auc, 1 - auc)``).

    Dates with one class only, and columns constant within a date, are skipped for that date.
    """
    from sklearn.metrics import roc_auc_score

    out = {}
    for column in columns:
        aucs = [
            roc_auc_score(group["label"], group[column])
            for _, group in frame.groupby("as_of")
            if group["label"].nunique() == 2 and group[column].nunique() > 1
        ]
        if aucs:
            auc = float(np.mean(aucs))
            out[column] = max(auc, 1.0 - auc)
    return pd.Series(out, dtype="float64")


def family_signal(tables: Tables, labels: LabelConfig, since: str | None = None) -> pd.DataFrame:
    """Per target and feature family: its strongest column and that column's signal."""
    from features.catalog import family_of
    from features.feature_config import FeatureConfig
    from features.frames import FrameConfig, build_training_frames

    frames = build_training_frames(
        tables, {t: FrameConfig(every_days=FAMILY_EVERY_DAYS, snapshots=200) for t in TARGETS},
        labels, FeatureConfig(),
    )
    rows = []
    for target, frame in frames.items():
        data = frame.data if since is None else frame.data[frame.data["as_of"] >= since]
        signal = feature_signal(data, frame.feature_columns)
        families = signal.groupby([family_of(c) or "other" for c in signal.index])
        for family, values in families:
            rows.append({"target": target, "family": family, "column": values.idxmax(),
                         "signal": float(values.max())})
    return pd.DataFrame(rows)


def family_blocks(scipy: Tables | None) -> list[str]:
    """Which feature families carry signal on SciPy and on a simulated community."""
    from simulator.community import simulate_community

    tables = {}
    if scipy is not None:
        tables["SciPy (2012 on)"] = (scipy, PROTOCOL_LABELS, "2012-01-01")
    members, years = FAMILY_SIM
    sim = simulate_community(sim_config(members, years, 0))
    tables[f"simulated {members:,} x {years:g} y"] = (_sim_tables(sim), LabelConfig(), None)
    merged = None
    for name, (data, labels, since) in tables.items():
        found = family_signal(data, labels, since).rename(
            columns={"column": f"{name}: column", "signal": f"{name}: signal"}
        )
        merged = found if merged is None else merged.merge(found, on=["target", "family"],
                                                           how="outer")
    merged = merged.sort_values(["target", "family"])
    header = list(merged.columns)
    rows = [[_f(v) if isinstance(v, float) else ("" if v is None else str(v)) for v in row]
            for row in merged.itertuples(index=False)]
    return [
        "### Which feature families carry signal",
        "Per family, its strongest column's mean per-date ROC-AUC (direction-free, quarterly "
        "snapshots of the labelled history; 0.5 = no signal).",
        markdown_table(header, rows),
    ]


def _sim_tables(sim) -> Tables:
    """Validated tables of a simulation held in memory."""
    from features.contract import validate_tables

    frames = {"members": sim.members, "activities": sim.activities, "roles": sim.roles,
              "chapters": sim.chapters}
    return validate_tables(frames, source="<simulated>")


def scipy_blocks(result: dict) -> list[str]:
    """Markdown blocks and printed lines of the SciPy part."""
    records = result["records"]
    means = {t: mean_over_dates(records, t, "model") for t in TARGETS}
    means17 = {t: mean_over_dates(records, t, "model", last=README_LAST) for t in TARGETS}
    return [
        "### SciPy protocol: mean per-date figures",
        markdown_table(SUMMARY_HEADER, scipy_summary_rows(records)),
        "**Goals (all dates)**: " + "; ".join(verdicts(means)) + ".",
        "Goals on the README's 17 dates (to 2022-01-01): " + "; ".join(verdicts(means17)) + ".",
        *skipped_dates(records),
        "### README rule figures, reproduced (README's 17 dates)",
        markdown_table(README_HEADER, readme_check_rows(records)),
        "README eligibility = readiness without anyone who ever held the maintainer role "
        "before the date; disengagement with an authored commit (not only merges) in the 365 "
        "days before. corecast's labels count former maintainers and merge-only members.",
        "### Training per date (what train_and_register returned)",
        markdown_table(TRAIN_HEADER, result["trainings"]),
        "### Per scoring date",
        markdown_table(DATE_HEADER, scipy_date_rows(records)),
    ]


def simulated_blocks(rows: list[list[str]]) -> list[str]:
    """Markdown blocks of the simulated part."""
    return [
        "### Simulated small and short communities (default settings, default scoring date)",
        markdown_table(SIM_HEADER, rows),
        f"scored = share of the members eligible at the scoring date that got a score (goal >= "
        f"{COVERAGE_GOAL:.0%}); holdout = the outcome's `holdout.*` metrics.",
    ]


def code_state() -> str:
    """The git commit of the repository and how many files differ from it (read-only git)."""
    import subprocess

    def git(*args: str) -> str:
        """Output of a read-only git command in the repository ("" on failure)."""
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=False)
        return done.stdout.rstrip()

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line]
    if not changed:
        return f"commit {head}"
    names = ", ".join(changed[:15])
    if len(changed) > 15:
        names += f" and {len(changed) - 15} more"
    return f"commit {head} + uncommitted changes in {len(changed)} files ({names})"


def write_report(path: Path, command: str, blocks: Sequence[str], seconds: float,
                 title: str = "Real data and small communities") -> None:
    """Append a dated section ``title`` (machine, load, command, code) with ``blocks``."""
    from benchmarks.harness import machine_line

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"\n## {title} — {stamp}", "",
             f"Machine: {machine_line()}; load average at the end (1/5/15 min): {load}; "
             f"{seconds / 60:.1f} min.", "", f"Command: `{command}`", "",
             f"Code: {code_state()}."]
    for block in blocks:
        lines += ["", block]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def publish(path: Path, module: str, argv: Sequence[str], blocks: Sequence[str], seconds: float,
            title: str = "Real data and small communities") -> None:
    """Append the blocks to ``path`` (:func:`write_report`) and print them."""
    command = f"python -m {module} {shlex.join(argv)}".strip()
    write_report(path, command, blocks, seconds, title=title)
    for block in blocks:
        print("\n" + block)
    print(f"\nAppended to {path}")


def _parser() -> argparse.ArgumentParser:
    """The command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, nargs="+", default=list(PROTOCOL_YEARS),
                        help="training years of the SciPy protocol (subset of 2014-2022)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="seeds of the simulated communities")
    parser.add_argument("--skip-simulated", action="store_true")
    parser.add_argument("--skip-scipy", action="store_true")
    parser.add_argument("--skip-families", action="store_true",
                        help="skip the feature families' signal on SciPy and a simulation")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="SciPy tables (default: ../shared/realdata/scipy)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results file (appended)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(argv)
    bad = [y for y in args.years if y not in PROTOCOL_YEARS]
    if bad:
        parser.error(f"--years: {bad} outside the protocol years 2014-2022")
    if not args.skip_scipy and not (args.data / "members.csv").is_file():
        print(f"bench_realdata: no SciPy data at {args.data} (expected members.csv, "
              "activities.csv, roles.csv); pass --data PATH or --skip-scipy", file=sys.stderr)
        return 2
    from features.settings import TELEMETRY_OFF

    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    t0 = time.perf_counter()
    blocks: list[str] = []
    if not args.skip_scipy:
        from features.contract import load_tables

        print(f"SciPy protocol, training years {args.years} ...", flush=True)
        blocks += scipy_blocks(run_scipy(load_tables(str(args.data)), args.years))
    if not args.skip_simulated:
        print("Simulated communities ...", flush=True)
        blocks += simulated_blocks(run_simulated(SIM_CASES, args.seeds))
    if not args.skip_families:
        from features.contract import load_tables

        print("Feature families ...", flush=True)
        blocks += family_blocks(None if args.skip_scipy else load_tables(str(args.data)))
    publish(args.out, "benchmarks.bench_realdata", argv, blocks, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
