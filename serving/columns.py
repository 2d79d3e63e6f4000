"""The columns of the predictions table, in one place for the scorer, the report and the push.

Kept free of heavy imports: the CRM push (:mod:`serving.crm.records`) reads them without
loading the scorer.
"""

from __future__ import annotations

__all__ = [
    "METHOD_COLUMNS",
    "PREDICTION_COLUMNS",
    "NOT_PUSHED_COLUMNS",
    "PUSH_COLUMNS",
    "REPORT_COLUMNS",
    "OMITTABLE_FIELDS",
]

#: What produced each score (``model`` or ``rule:<name>``) and whether it was validated.
METHOD_COLUMNS = [
    "readiness_method",
    "readiness_validated",
    "disengagement_method",
    "disengagement_validated",
]

#: Columns of ``predictions.parquet`` / ``predictions.csv``, in order.
PREDICTION_COLUMNS = [
    "member_id",
    "email",
    "chapter_id",
    "as_of",
    "readiness_score",
    "readiness_rank",
    "disengagement_score",
    "segment",
    "action",
    "reasons",
    "talking_point",
    "readiness_reasons",
    "disengagement_reasons",
    "holds_core_role",
    "readiness_model_version",
    "disengagement_model_version",
    *METHOD_COLUMNS,
    "run_id",
    "scored_at",
]

#: Prediction columns a push neither needs nor sends.
NOT_PUSHED_COLUMNS = ("readiness_reasons", "disengagement_reasons", "holds_core_role")

#: The predictions a push reads (the predictions contract of :mod:`serving.crm`), in order.
PUSH_COLUMNS = [c for c in PREDICTION_COLUMNS if c not in NOT_PUSHED_COLUMNS]

#: The predictions the chapter report reads (the method columns too, when present).
REPORT_COLUMNS = [
    "member_id",
    "chapter_id",
    "readiness_score",
    "readiness_rank",
    "disengagement_score",
    "segment",
    "holds_core_role",
]

#: The CRM fields a push can leave out (``--omit-field``, ``push.omit_fields``): every pushed
#: field but the member id and the email that identify the contact.
OMITTABLE_FIELDS = (
    "readiness_score", "readiness_rank", "disengagement_score", "segment", "action", "reasons",
    "talking_point", "as_of", "scored_at", "model_versions", *METHOD_COLUMNS,
)
