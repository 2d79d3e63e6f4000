"""What a flow run publishes in Prefect: a markdown summary, a table, links to MLflow.

The ``build_*`` functions are pure (frames and outcomes in, markdown / rows out) and are tested
without Prefect; the ``publish_*`` functions hand their output to Prefect's artifact API and must
run inside a flow or task run. No email address ever appears in an artifact: summaries list
member ids, and any text that looks like an email is replaced (``[email hidden]``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from serving.report_html import hide_emails
from serving.score import model_label_config, model_method

__all__ = [
    "DEFAULT_MLFLOW_UI_URL",
    "mlflow_run_url",
    "mlflow_model_url",
    "method_text",
    "build_training_markdown",
    "build_weekly_markdown",
    "build_chapter_rows",
    "build_top_candidates",
    "publish_training",
    "publish_weekly",
    "publish_push",
    "publish_features",
]

#: Where ``corecast ui`` serves the MLflow UI by default.
DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"

#: Chapter report columns copied into the table artifact, in order.
CHAPTER_COLUMNS = (
    "urgency_rank",
    "chapter_id",
    "name",
    "city",
    "members",
    "active_members_now",
    "active_trend",
    "ambassadors",
    "ambassadors_at_risk",
    "ready_now",
    "successor_candidates",
    "members_at_risk",
    "link_density",
    "health",
)

_METRICS = (
    ("ROC-AUC", "holdout.roc_auc"),
    ("PR-AUC", "holdout.pr_auc"),
    ("precision@k", "holdout.precision_at_k"),
    ("ECE", "holdout.ece"),
)


def mlflow_run_url(ui_url: str, run_id: str) -> str:
    """Link to an MLflow run in the MLflow UI."""
    return f"{ui_url.rstrip('/')}/#/runs/{run_id}"


def mlflow_model_url(ui_url: str, model: str, version: str | int) -> str:
    """Link to a registered model version in the MLflow UI."""
    return f"{ui_url.rstrip('/')}/#/models/{model}/versions/{version}"


def _text(value) -> str:
    """A markdown-safe cell: missing as empty, emails hidden, pipes escaped."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return hide_emails(str(value)).replace("|", "\\|").replace("\n", " ")


def _table(frame: pd.DataFrame) -> str:
    """A markdown table of a small frame."""
    if frame.empty:
        return "_none_\n"
    lines = [
        "| " + " | ".join(str(c) for c in frame.columns) + " |",
        "|" + "---|" * frame.shape[1],
    ]
    lines += ["| " + " | ".join(_text(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines) + "\n"


def _metric(metrics: Mapping, key: str) -> float | None:
    value = (metrics or {}).get(key)
    if value is None:
        value = (metrics or {}).get(key.replace("_at_k", "@k"))
    return None if value is None or math.isnan(float(value)) else float(value)


def method_text(method: str | None, validated: bool) -> str:
    """``model, validated`` / ``rule:activity_365d, not validated``; empty without a method."""
    if not method:
        return ""
    return f"{method}, {'validated' if validated else 'not validated'}"


def build_training_markdown(outcomes: Sequence, source: str, ui_url: str) -> str:
    """Markdown summary of a training run: per target status, version, method (``model`` or
    ``rule:<name>``, validated or not), metrics, gate decision and the notes saying why.

    Args:
        outcomes: :class:`models.workflow.TrainOutcome` objects.
        source: A printable label of the data source (no password).
        ui_url: Base URL of the MLflow UI (for the run links).
    """
    rows = []
    for o in outcomes:
        metrics = o.metrics or {}
        row = {
            "target": o.target,
            "status": o.status,
            "version": f"v{o.version}" if o.version else "",
            "method": method_text(getattr(o, "method", None), getattr(o, "validated", False)),
        }
        for label, key in _METRICS:
            value = _metric(metrics, key)
            row[label] = "" if value is None else f"{value:.3f}"
        row["gate"] = o.decision.reason if o.decision else o.message
        link = f"[{o.run_id[:8]}]({mlflow_run_url(ui_url, o.run_id)})" if o.run_id else ""
        row["MLflow run"] = link
        rows.append(row)
    frame = pd.DataFrame(rows)
    table = _table(frame) if not frame.empty else "_no target trained_\n"
    notes = [
        f"- {o.target}: {_text(note)}" for o in outcomes for note in getattr(o, "notes", ())
    ]
    return (
        f"# corecast training\n\n"
        f"Data: `{_text(source)}`\n\n"
        "Each new version is registered as `challenger`; it becomes `champion` only when it is at "
        "least as good as the current champion on the primary metric, on the same holdout.\n\n"
        f"{table}"
        + ("\n## Why\n\n" + "\n".join(notes) + "\n" if notes else "")
    )


def build_top_candidates(
    predictions: pd.DataFrame, chapters: pd.DataFrame | None = None, top: int = 3
) -> pd.DataFrame:
    """The ``top`` readiness candidates of every chapter (member ids, never emails).

    Returns:
        Columns chapter, member_id, rank, readiness, segment, reasons; sorted by chapter then
        rank.
    """
    columns = ["chapter", "member_id", "rank", "readiness", "segment", "reasons"]
    if predictions.empty or predictions["readiness_score"].isna().all():
        return pd.DataFrame(columns=columns)
    ranked = predictions[predictions["readiness_rank"].notna()]
    ranked = ranked[ranked["readiness_rank"] <= top]
    ranked = ranked.sort_values(["chapter_id", "readiness_rank"], na_position="last")
    names = pd.Series(dtype=object)
    if chapters is not None and {"chapter_id", "name"} <= set(chapters.columns):
        named = chapters.dropna(subset=["chapter_id"])
        names = pd.Series(named["name"].to_numpy(), index=named["chapter_id"].astype(str))
    label = [
        "(no chapter)" if pd.isna(chapter) else str(names.get(str(chapter), chapter))
        for chapter in ranked["chapter_id"].astype(object)
    ]
    return pd.DataFrame(
        {
            "chapter": label,
            "member_id": ranked["member_id"].astype(str).map(hide_emails).to_numpy(),
            "rank": ranked["readiness_rank"].astype(int).to_numpy(),
            "readiness": ranked["readiness_score"].round(3).to_numpy(),
            "segment": ranked["segment"].to_numpy(),
            "reasons": ranked["readiness_reasons"].fillna("").map(hide_emails).to_numpy(),
        },
        columns=columns,
    )


def build_chapter_rows(chapters: pd.DataFrame) -> list[dict]:
    """Rows of the chapter table artifact (JSON-friendly, emails hidden)."""
    present = [c for c in CHAPTER_COLUMNS if c in chapters.columns]
    rows = []
    for record in chapters[present].to_dict(orient="records"):
        row = {}
        for key, value in record.items():
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                row[key] = None
            elif isinstance(value, float):
                row[key] = round(value, 4)
            elif isinstance(value, int | bool):
                row[key] = value
            elif hasattr(value, "item"):  # numpy scalars
                row[key] = value.item()
            else:
                row[key] = hide_emails(str(value))
        rows.append(row)
    return rows


def _push_lines(push) -> list[str]:
    if push is None:
        return ["- push: skipped (no CRM target)"]
    report = push.report
    head = "dry run, nothing sent: " if report.dry_run else ""
    lines = [
        f"- push to **{report.kind}**: {head}{report.total} predictions; plan {report.new} new, "
        f"{report.changed} changed, {report.retried} to retry, {report.unchanged} unchanged "
        f"→ {report.to_send} to send",
    ]
    if not report.dry_run:
        lines.append(
            f"- push result: {report.sent} sent, {report.failed} failed, "
            f"{report.pending} pending ({report.seconds:.1f} s)"
        )
    if getattr(push, "partial", None):
        lines.append(f"- **{push.partial}**")
    for path in push.files:
        lines.append(f"- CRM import file: `{path}`")
    return lines


def _quarantine_lines(quarantine) -> list[str]:
    """Summary lines of a quarantine load (none for a strict one)."""
    if quarantine is None:
        return []
    lines = quarantine.lines()
    if not lines:
        return ["- invalid rows: none (loaded with on_invalid=quarantine)"]
    return [f"- quarantined {_text(line)}" for line in lines]


def _outreach_lines(predictions: pd.DataFrame) -> list[str]:
    """Whom to contact this cycle and whom the control group holds back (when scored so)."""
    if "action" not in predictions.columns:
        return []
    counts = predictions["action"].value_counts()
    return [
        f"- outreach this cycle: {int(counts.get('contact', 0)):,} to contact, "
        f"{int(counts.get('hold', 0)):,} held back as the control group (action `hold`: do "
        "not call them this cycle)"
    ]


def build_weekly_markdown(
    *,
    source: str,
    first_observed: pd.Timestamp,
    last_observed: pd.Timestamp,
    result,
    chapters: pd.DataFrame,
    models: Mapping[str, object | None],
    push,
    outputs: Sequence,
    ui_url: str,
    top: int = 3,
    quarantine=None,
    labels_fingerprint: str | None = None,
    outreach: Sequence[str] = (),
) -> str:
    """Markdown summary of a weekly run.

    Args:
        source: Printable label of the data source.
        first_observed: First activity timestamp of the data.
        last_observed: Last activity timestamp of the data.
        result: :class:`serving.score.ScoreResult`.
        chapters: The chapter report.
        models: ``{"readiness": LoadedModel | None, "disengagement": ...}``.
        push: :class:`pipelines.tasks.PushOutcome` or ``None``.
        outputs: Files written.
        ui_url: Base URL of the MLflow UI.
        top: Candidates listed per chapter.
        quarantine: :class:`features.quarantine.QuarantineReport` of the load, or ``None``
            (strict load: nothing to report).
        labels_fingerprint: The label settings the configuration expects; a model trained
            with others gets a bold line saying so.
        outreach: What the outreach loop measured (sentences), or why it could not.
    """
    predictions = result.predictions
    model_lines = _model_lines(models, ui_url, labels_fingerprint)
    candidates = build_top_candidates(predictions, chapters, top)
    parts = [
        "# corecast weekly scores\n",
        f"- data: `{_text(source)}`, activity from {first_observed:%Y-%m-%d} "
        f"to {last_observed:%Y-%m-%d}",
        *_quarantine_lines(quarantine),
        f"- scored at: {result.as_of:%Y-%m-%d} (only activity before this date is used)",
        f"- members scored: {len(predictions):,}",
        *_outreach_lines(predictions),
        *model_lines,
        *_push_lines(push),
        *(["\n## What the calls changed\n", *(f"- {_text(line)}" for line in outreach)]
          if outreach else []),
        "\n## Members per segment\n",
        _table(_segment_counts(predictions)),
        f"\n## Top {top} readiness candidates per chapter\n",
        "Member ids only; look them up in your own tools.\n",
        _table(candidates),
        "\n## Files\n",
        *[f"- `{p}`" for p in outputs],
    ]
    return "\n".join(parts) + "\n"


def _segment_counts(predictions: pd.DataFrame) -> pd.DataFrame:
    """Members per segment, the largest first (``segment``, ``members``)."""
    counts = predictions["segment"].value_counts()
    return pd.DataFrame({"segment": counts.index.astype(str), "members": counts.to_numpy()})


def _model_lines(
    models: Mapping[str, object | None], ui_url: str, labels_fingerprint: str | None
) -> list[str]:
    """One line per target of the weekly summary: the model version and its links, method and
    label settings, or ``not scored``; and a bold line when the model was trained with other
    label settings than ``labels_fingerprint``."""
    lines = []
    for target, model in models.items():
        if model is None:
            lines.append(f"- {target}: not scored (no model)")
            continue
        name = f"corecast-{target}"
        aliases = ", ".join(model.aliases) or "no alias"
        version_url = mlflow_model_url(ui_url, name, model.version)
        method, validated = model_method(model)
        labels = model_label_config(model)
        lines.append(
            f"- {target}: [{name} v{model.version}]({version_url}) ({aliases}; "
            f"{method_text(method, validated)}) - "
            f"[training run]({mlflow_run_url(ui_url, model.run_id)}); trained with "
            f"{_text(labels.describe())} (labels fingerprint `{labels.fingerprint()}`)"
        )
        if labels_fingerprint is not None and labels.fingerprint() != labels_fingerprint:
            lines.append(
                f"  - **{target}: trained with other label settings than the configuration's "
                f"(`{labels_fingerprint}`): retrain (`corecast run --retrain`) to score with "
                "them**"
            )
    return lines


def publish_training(outcomes: Sequence, source: str, ui_url: str) -> None:
    """Publish the training summary and a link to every MLflow run (inside a flow run)."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact

    create_markdown_artifact(
        build_training_markdown(outcomes, source, ui_url),
        key="corecast-training",
        description="Training: metrics, registered versions and promotion decisions",
    )
    for o in outcomes:
        if o.run_id:
            create_link_artifact(
                mlflow_run_url(ui_url, o.run_id),
                link_text=f"MLflow run of {o.target} v{o.version} ({o.status})",
                key=f"corecast-mlflow-run-{o.target}",
                description=f"Training run of corecast-{o.target} in the MLflow UI",
            )


def publish_weekly(
    markdown: str, chapters: pd.DataFrame, models: Mapping[str, object | None], ui_url: str
) -> None:
    """Publish the weekly summary, the chapter table and links to the models' MLflow runs."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    create_markdown_artifact(
        markdown, key="corecast-weekly", description="Weekly scores: segments, candidates, push"
    )
    create_table_artifact(
        build_chapter_rows(chapters),
        key="corecast-chapters",
        description="Chapter succession report, most urgent chapter first",
    )
    for target, model in models.items():
        if model is not None and model.run_id:
            create_link_artifact(
                mlflow_run_url(ui_url, model.run_id),
                link_text=f"MLflow run of the {target} model v{model.version}",
                key=f"corecast-scoring-model-{target}",
                description=f"Training run of the corecast-{target} model used for scoring",
            )


def publish_push(push, predictions: str) -> None:
    """Publish the result of a push (inside a flow run)."""
    from prefect.artifacts import create_markdown_artifact

    lines = ["# corecast push\n", f"- predictions: `{predictions}`", *_push_lines(push)]
    create_markdown_artifact(
        "\n".join(lines) + "\n", key="corecast-push", description="CRM push: plan and result"
    )


def publish_features(source: str, as_of: pd.Timestamp, rows: int, columns: int, path) -> None:
    """Publish what a features run wrote (inside a flow run)."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        f"# corecast features\n\n- data: `{_text(source)}`\n- as of: {as_of:%Y-%m-%d} (only "
        f"rows before it)\n- {rows:,} members x {columns} features\n- file: `{path}`\n",
        key="corecast-features",
        description="Point-in-time features written",
    )
