"""Benchmark steps of the monthly job: train both targets, score, push, and all of it together.

Used by :mod:`benchmarks.pipeline` (each step runs in its own interpreter). Training goes through
the domain function :func:`models.train.train_target` (no MLflow logging: the registry's cost is
bookkeeping, not computation); the trained models are pickled into the size's data folder so the
``score`` and ``push`` steps reuse them. The ``monthly`` step runs the whole job in one process:
train both targets, score every member, build and write the chapter report, and push to a CSV
file through the delivery ledger.
"""

from __future__ import annotations

import dataclasses
import pickle
import tempfile
import time
from pathlib import Path

__all__ = ["train_models", "loaded_models", "step_train", "step_score", "step_push",
           "step_monthly"]

MODELS_FILE = "bench_models.pkl"


def train_models(tables, source: str | None = None, threads: int | str | None = "default"
                 ) -> tuple[dict, dict]:
    """Train both targets with the default settings, as ``train_and_register`` does.

    The two training frames are built together (one feature pass per snapshot date,
    :func:`models.train.build_target_frames`); each result is turned into a
    :class:`models.registry.LoadedModel` as soon as it is trained and its frame released. A
    target the data cannot express (no roles table) or with too little data is skipped.

    Args:
        tables: The data.
        source: The data folder (for the oracle), or ``None``.
        threads: Native threads (``None`` = all cores); ``"default"`` keeps
            ``TrainConfig.threads``.

    Returns:
        ``({target: LoadedModel}, figures)``.
    """
    from features.errors import InsufficientDataError, TargetUnavailable
    from features.feature_config import FeatureConfig
    from features.labels import LabelConfig
    from models.config import TARGETS, TrainConfig
    from models.train import build_target_frames, default_frame_config, train_target
    from simulator.oracle import oracle_for

    labels = LabelConfig()
    oracle = oracle_for(source)
    extra = {} if threads == "default" else {"threads": threads}
    configs = {target: TrainConfig(target=target, **extra) for target in TARGETS}
    frames = {target: default_frame_config(target, labels, configs[target]) for target in TARGETS}
    out, info = {}, {}
    t0 = time.perf_counter()
    built, _ = build_target_frames(tables, frames, labels, FeatureConfig())
    info["frames_s"] = round(time.perf_counter() - t0, 1)
    for target in TARGETS:
        if target not in built:
            continue
        t0 = time.perf_counter()
        try:
            result = train_target(
                tables, target, labels, frames[target], FeatureConfig(), configs[target],
                oracle=oracle, training_frame=built.pop(target),
            )
        except (TargetUnavailable, InsufficientDataError):
            continue
        info[f"{target}_s"] = round(time.perf_counter() - t0, 1)
        info[f"{target}_rows"] = int(result.metrics["train.rows"])
        info[f"{target}_share"] = round(float(result.metrics["frame.member_share"]), 4)
        info[f"{target}_model"] = result.candidate
        info[f"{target}_pr_auc"] = round(float(result.metrics["holdout.pr_auc"]), 4)
        info[f"{target}_ece"] = round(float(result.metrics.get("holdout.ece", float("nan"))), 4)
        out.update(loaded_models({target: result}))
        del result
    return out, info


def loaded_models(results: dict) -> dict:
    """Wrap training results as the :class:`models.registry.LoadedModel` scoring expects."""
    from models.registry import LoadedModel

    out = {}
    for target, result in results.items():
        out[target] = LoadedModel(
            target=target,
            model=result.model,
            feature_columns=tuple(result.feature_columns),
            version="bench",
            aliases=(),
            run_id="bench",
            metadata={
                "features": result.feature_config.to_dict(),
                "labels": dataclasses.asdict(result.label_config),
            },
        )
    return out


def _load(size: str):
    from benchmarks.pipeline import data_dir
    from features.contract import load_tables

    return load_tables(data_dir(size))


def step_train(size: str, threads: int | str | None = "default") -> dict:
    """Train both targets (``threads`` native threads, ``None`` = all cores, ``"default"`` =
    the training default of one); pickle the loaded models for the later steps."""
    from benchmarks.pipeline import data_dir

    tables = _load(size)
    t0 = time.perf_counter()
    models, info = train_models(tables, threads=threads)
    core = time.perf_counter() - t0
    with (data_dir(size) / MODELS_FILE).open("wb") as fh:
        pickle.dump(models, fh)
    return {"core_s": core, **info}


def _models(size: str) -> dict:
    from benchmarks.pipeline import data_dir

    path = data_dir(size) / MODELS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: run the train step at size {size} first")
    with path.open("rb") as fh:
        return pickle.load(fh)


def step_score(size: str, models_from: str | None = None) -> dict:
    """Score every consenting member with the models of the train step, timing each stage.

    Args:
        size: Size of the community to score.
        models_from: Size whose train step made the models (default: ``size`` itself). The
            models of a smaller community score a larger one of the same simulator (same
            feature vocabulary), e.g. ``python -m benchmarks.run --size small --steps simulate
            train`` then ``python -m benchmarks.run --size national --steps score_small``.

    Returns:
        ``core_s`` (the whole of :func:`serving.score.score_members`, composed of its stages
        here) and the seconds of each stage: features and eligibility, scores and reason plans,
        reasons, ranks and segments.
    """
    from serving.score import (
        build_member_part,
        default_as_of,
        explain_part,
        finish_scores,
        score_parts,
    )

    tables = _load(size)
    models = _models(models_from or size)
    readiness, disengagement = models.get("readiness"), models.get("disengagement")
    laps = {}
    t0 = time.perf_counter()
    when = default_as_of(tables)
    part = build_member_part(tables, when, readiness, disengagement)
    laps["features_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    run = score_parts(tables, [part], readiness, disengagement)
    laps["scores_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    reasons = explain_part(part, run, readiness, disengagement)
    laps["reasons_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    result = finish_scores(tables, [part], run, [reasons], readiness, disengagement)
    laps["finish_s"] = time.perf_counter() - t1
    core = time.perf_counter() - t0
    return {
        "core_s": core,
        **{k: round(v, 2) for k, v in laps.items()},
        "members": len(result.predictions),
        "models": ",".join(f"{t}={_model_kind(m)}" for t, m in models.items()),
    }


def _model_kind(loaded) -> str:
    """Class name of the fitted estimator inside a loaded model (under calibration, pipeline)."""
    inner = getattr(loaded.model, "estimator", loaded.model)
    last = inner.steps[-1][1] if hasattr(inner, "steps") else inner
    return type(last).__name__


def step_push(size: str, workers: int = 4) -> dict:
    """Push the scored members to the fake HubSpot (first full push), as ``bench_push`` does."""
    from benchmarks.bench_push import TOKEN
    from benchmarks.fakes.hubspot import FakeHubSpot
    from benchmarks.fakes.server import FakeServer
    from serving.crm import HubSpotConfig, HubSpotSink, Ledger, push_predictions
    from serving.crm.http import Secret
    from serving.score import score_members

    tables = _load(size)
    models = _models(size)
    predictions = score_members(
        tables, readiness=models.get("readiness"), disengagement=models.get("disengagement")
    ).predictions
    fake = FakeHubSpot(TOKEN)
    with FakeServer(fake) as server, tempfile.TemporaryDirectory() as tmp:
        config = HubSpotConfig(base_url=server.url, rate_limit_calls=1_000_000, workers=workers)
        with Ledger(Path(tmp) / "ledger.sqlite") as ledger:
            t0 = time.perf_counter()
            report = push_predictions(predictions, HubSpotSink(config, Secret(TOKEN)), ledger)
            core = time.perf_counter() - t0
    return {"core_s": core, "sent": int(report.sent), "requests": int(report.requests)}


def step_monthly(size: str) -> dict:
    """The whole monthly job in one process: train both, score, report, CSV push."""
    from benchmarks.pipeline import data_dir
    from serving.crm import CsvConfig, CsvSink, Ledger, push_predictions
    from serving.report import build_chapter_report, write_report
    from serving.report_html import render_report_html
    from serving.score import score_members

    t0 = time.perf_counter()
    tables = _load(size)
    laps = {"load_s": time.perf_counter() - t0}
    t1 = time.perf_counter()
    models, _ = train_models(tables, str(data_dir(size)))
    laps["train_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    scored = score_members(
        tables, readiness=models.get("readiness"), disengagement=models.get("disengagement")
    )
    laps["score_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = build_chapter_report(scored.predictions, tables, scored.as_of, scored.features)
        html = render_report_html(
            report, scored.predictions, as_of=scored.as_of, meta=scored.meta,
            features=scored.features,
        )
        write_report(report, html, Path(tmp) / "report")
        laps["report_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        sink = CsvSink(CsvConfig(path=Path(tmp) / "export.csv"))
        with Ledger(Path(tmp) / "ledger.sqlite") as ledger:
            pushed = push_predictions(scored.predictions, sink, ledger)
        laps["push_s"] = time.perf_counter() - t1
    return {
        "core_s": time.perf_counter() - t0,
        **{k: round(v, 1) for k, v in laps.items()},
        "members": len(scored.predictions),
        "sent": int(pushed.sent),
    }
