"""The predictions contract for pushing, and the vectorised rendering of CRM payloads.

A predictions table (from batch scoring) has one row per member and the columns in
:data:`serving.columns.PUSH_COLUMNS`. :func:`validate_predictions` checks it and returns a
normalised copy;
:func:`select_consenting` drops members whose ``consent`` column (when present) is not ``True``;
:func:`render_field_strings` turns the canonical CRM fields into text (all CRM property values are
strings) and :func:`hash_payloads` gives each rendered record a stable 64-bit fingerprint.

The method columns (``readiness_method``, ``readiness_validated`` and their disengagement
twins: ``model`` or ``rule:<name>``, and whether those scores were validated) are pushed as
fields of their own. Predictions written before they existed lack them; they are read as
validated learned models (those files came from models). The ``talking_point`` field (what to say
when calling a ready-now candidate, empty for everyone else) is read as missing from files
written before it existed.

The delivery ledger compares :func:`fingerprint_content` between runs (delta push): the
fingerprint of a record's *content* — everything but the volatile fields (by default
:data:`DEFAULT_VOLATILE_FIELDS`: when and by which models it was scored), which change on every
scoring run even when nothing a community manager sees has changed. Volatile fields are still
sent with every record that is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.consent import parse_consent
from features.errors import ConfigError, ContractError
from features.tables import to_utc_naive
from serving.columns import METHOD_COLUMNS, PUSH_COLUMNS
from serving.outreach import ACTIONS

__all__ = [
    "FieldSpec",
    "CRM_FIELDS",
    "DEFAULT_HUBSPOT_PROPERTIES",
    "DEFAULT_SALESFORCE_FIELDS",
    "MEMBER_KEY",
    "RECORD_KEY",
    "load_predictions",
    "validate_predictions",
    "select_consenting",
    "render_field_strings",
    "resolve_mapping",
    "hash_payloads",
    "VOLATILE_FIELD_CHOICES",
    "DEFAULT_VOLATILE_FIELDS",
    "validate_volatile_fields",
    "columns_of_fields",
    "fingerprint_content",
    "fingerprint_scheme",
    "format_rows",
]

#: Columns of a predictions table to push (:data:`serving.columns.PUSH_COLUMNS`); the method
#: columns, ``action`` and ``talking_point`` may be missing from files written before they
#: existed.

TEXT_COLUMNS = [
    "member_id",
    "email",
    "chapter_id",
    "segment",
    "action",
    "reasons",
    "talking_point",
    "readiness_model_version",
    "disengagement_model_version",
    "readiness_method",
    "disengagement_method",
    "run_id",
]
SCORE_COLUMNS = ["readiness_score", "disengagement_score"]
TIME_COLUMNS = ["as_of", "scored_at"]
BOOL_COLUMNS = ["readiness_validated", "disengagement_validated"]

MEMBER_KEY = "__member_id"
"""Column of a rendered frame holding the member id (the ledger key)."""
RECORD_KEY = "__record_id"
"""Column of a rendered frame holding the value the CRM identifies the record by (may be NA)."""

SCORE_DECIMALS = 4


@dataclass(frozen=True)
class FieldSpec:
    """One canonical CRM field and how to create it as a HubSpot contact property.

    Attributes:
        name: Canonical field name (key of the property mappings).
        label: Human-readable label shown in the CRM.
        hubspot_type: HubSpot property ``type`` (``string``, ``number``, ``datetime``).
        hubspot_field_type: HubSpot ``fieldType`` (``text``, ``textarea``, ``number``, ``date``).
        description: Description shown in the CRM.
    """

    name: str
    label: str
    hubspot_type: str
    hubspot_field_type: str
    description: str


def _method_fields(target: str) -> tuple[FieldSpec, FieldSpec]:
    """The two fields saying what produced a target's score and whether it was validated."""
    title = target.capitalize()
    return (
        FieldSpec(f"{target}_method", f"{title} scored by", "string", "text",
                  f"What produced the {target} score: model (a learned model) or rule:<name> "
                  "(a transparent ranking rule used when no model could be trained)."),
        FieldSpec(f"{target}_validated", f"{title} validated", "string", "text",
                  f"true when the {target} scores were checked against past outcomes; false: "
                  "a rank within the community, not a probability."),
    )


CRM_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("member_id", "Corecast member id", "string", "text",
              "Member id in the community platform (written by corecast)."),
    FieldSpec("readiness_score", "Ambassador readiness score", "number", "number",
              "Probability-like score (0-1) that the member is ready to become an ambassador."),
    FieldSpec("readiness_rank", "Ambassador readiness rank in chapter", "number", "number",
              "Rank of the readiness score within the member's chapter (1 = most ready)."),
    FieldSpec("disengagement_score", "Disengagement risk score", "number", "number",
              "Probability-like score (0-1) that the member drifts away soon."),
    FieldSpec("segment", "Corecast segment", "string", "text",
              "Action segment: ready-now, nurture, ambassador-at-risk, at-risk, steady, ..."),
    FieldSpec("action", "Corecast action this cycle", "string", "text",
              "contact: reach out to this member; hold: do not call this cycle (the control "
              "group that measures what calls change); none: nothing to do."),
    FieldSpec("reasons", "Corecast reasons", "string", "textarea",
              "Plain-language reasons behind the scores, separated by '; '."),
    FieldSpec("talking_point", "Corecast talking point", "string", "textarea",
              "For ready-now candidates: what to say on the call (what they did, why them, "
              "what the role would give them); empty for everyone else."),
    FieldSpec("as_of", "Corecast scores as of", "datetime", "date",
              "Point in time the scores describe."),
    FieldSpec("scored_at", "Corecast scored at", "datetime", "date",
              "When the scores were computed."),
    FieldSpec("model_versions", "Corecast model versions", "string", "text",
              "Registered model versions that produced the scores."),
    *_method_fields("readiness"),
    *_method_fields("disengagement"),
)

DEFAULT_HUBSPOT_PROPERTIES: dict[str, str] = {f.name: f"corecast_{f.name}" for f in CRM_FIELDS}
DEFAULT_SALESFORCE_FIELDS: dict[str, str] = {
    f.name: "Corecast_" + "_".join(p.capitalize() for p in f.name.split("_")) + "__c"
    for f in CRM_FIELDS
}


VOLATILE_FIELD_CHOICES: tuple[str, ...] = (
    *(f.name for f in CRM_FIELDS if f.name != "member_id"),
    "run_id",
)
"""Fields that may be declared volatile: every canonical CRM field but ``member_id`` (it identifies
the record), plus ``run_id`` (a field of webhook records only)."""

DEFAULT_VOLATILE_FIELDS: tuple[str, ...] = ("scored_at", "as_of", "model_versions", "run_id")
"""Fields left out of the change fingerprint by default: they change on every scoring run."""


def validate_volatile_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """Check a choice of volatile fields and return it as a tuple without repeats.

    Args:
        fields: Canonical field names (see :data:`VOLATILE_FIELD_CHOICES`); empty means "every
            field counts as a change".

    Raises:
        ConfigError: ``fields`` is a single string, names an unknown field, or names
            ``member_id``.
    """
    if isinstance(fields, str):
        raise ConfigError(
            f"volatile_fields must be a list of field names, not the string {fields!r} "
            f"(e.g. ({fields!r},))"
        )
    names = tuple(dict.fromkeys(str(name) for name in fields))
    if "member_id" in names:
        raise ConfigError(
            "volatile_fields: 'member_id' identifies the record and always counts as a change; "
            "remove it"
        )
    unknown = [name for name in names if name not in VOLATILE_FIELD_CHOICES]
    if unknown:
        raise ConfigError(
            f"volatile_fields: unknown field(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(VOLATILE_FIELD_CHOICES)} (or none)"
        )
    return names


def columns_of_fields(
    columns: Mapping[str, str | Sequence[str]], fields: Sequence[str]
) -> tuple[str, ...]:
    """Return the rendered columns that hold ``fields`` for one sink.

    Args:
        columns: Canonical field → rendered column name (or names) of the sink; fields the sink
            does not send are simply absent.
        fields: Canonical field names (e.g. the volatile fields).

    Returns:
        The columns, in the order of ``fields``; fields the sink does not send contribute none.
    """
    out: list[str] = []
    for name in fields:
        held = columns.get(name, ())
        out.extend([held] if isinstance(held, str) else held)
    return tuple(dict.fromkeys(out))


def fingerprint_content(rendered: pd.DataFrame, volatile_columns: Sequence[str] = ()) -> pd.Series:
    """Fingerprint what a record says, leaving out the ledger key and the volatile columns.

    Args:
        rendered: A sink's rendered records (with :data:`MEMBER_KEY` and :data:`RECORD_KEY`).
        volatile_columns: Rendered columns that do not count as a change (absent ones are
            ignored).

    Returns:
        One 16-hex-digit fingerprint per record (see :func:`hash_payloads`). With no volatile
        columns it equals the fingerprint of the whole payload.
    """
    dropped = [MEMBER_KEY, *(c for c in volatile_columns if c in rendered.columns)]
    return hash_payloads(rendered.drop(columns=dropped, errors="ignore"))


def fingerprint_scheme(volatile_columns: Sequence[str]) -> str:
    """Describe which columns a sink's fingerprints leave out (stored in the ledger meta).

    A ledger written before volatile fields existed fingerprinted every column, which is the
    scheme ``"excluded="``.
    """
    return "excluded=" + ",".join(sorted(set(volatile_columns)))


def format_rows(positions: np.ndarray, limit: int = 5) -> str:
    """Describe row positions (0-based) as 1-based data rows, e.g. ``rows 2, 7 (2 rows)``."""
    positions = np.asarray(positions)
    shown = ", ".join(str(int(p) + 1) for p in positions[:limit])
    more = f", … ({len(positions)} rows in all)" if len(positions) > limit else ""
    word = "row" if len(positions) == 1 else "rows"
    return f"{word} {shown}{more}"


#: An address with one ``@``, no blank or control character (a NUL, say), and a dot in its
#: domain: what a CRM accepts as an email.
_EMAIL = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"


def email_reject_reasons(emails: pd.Series) -> pd.Series:
    """Why each email cannot identify a contact, the same for every sink: ``no email``,
    ``invalid email`` or ``email shared with another member (ambiguous contact)``; missing
    when it can. Emails are compared trimmed and lower-cased."""
    text = emails.astype("str").where(emails.notna()).str.strip().str.lower()
    text = text.where(text != "")
    reasons = pd.Series(pd.NA, index=emails.index, dtype="str")
    shared = text.notna() & text.duplicated(keep=False)
    reasons = reasons.mask(shared, "email shared with another member (ambiguous contact)")
    malformed = text.notna() & ~text.str.match(_EMAIL).fillna(False).astype(bool)
    reasons = reasons.mask(malformed, "invalid email")
    return reasons.mask(text.isna(), "no email")


def load_predictions(path: str | Path) -> pd.DataFrame:
    """Read a predictions file (``.parquet`` or ``.csv``) and validate it.

    Args:
        path: The file written by batch scoring.

    Returns:
        The validated, normalised predictions (see :func:`validate_predictions`).

    Raises:
        ConfigError: The file does not exist or has an unsupported extension.
        ContractError: The file breaks the predictions contract.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"predictions file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(
            f"{path}: unsupported predictions format {suffix!r}; use .parquet or .csv"
        )
    return validate_predictions(_read_predictions(path, suffix), source=str(path))


def _read_predictions(path: Path, suffix: str) -> pd.DataFrame:
    """The raw table of a predictions file.

    Raises:
        ContractError: An empty, truncated or corrupt file (named, with what was wrong).
    """
    import pyarrow

    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={c: "str" for c in TEXT_COLUMNS}, keep_default_na=True)
    except (pyarrow.ArrowException, pd.errors.EmptyDataError, pd.errors.ParserError,
            UnicodeDecodeError, OSError) as exc:
        what = "empty" if path.stat().st_size == 0 else "unreadable"
        raise ContractError(
            f"{path}: the predictions file is {what} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); write it again with "
            "corecast score --out DIR"
        ) from exc


def _as_text(values: pd.Series) -> pd.Series:
    """Return a pandas ``str`` column (missing values stay missing)."""
    out = values.astype("str")
    return out.where(values.notna())


def validate_predictions(frame: pd.DataFrame, source: str = "<predictions>") -> pd.DataFrame:
    """Check a predictions table against the contract and return a normalised copy.

    Args:
        frame: Predictions with at least :data:`~serving.columns.PUSH_COLUMNS` (a ``consent``
            column is optional).
        source: File or table name used in error messages.

    Returns:
        A copy with text columns as ``str``, scores as ``float64``, ranks as ``Int64``, times as
        tz-naive UTC datetimes and ``consent`` (if present) as nullable ``boolean``.

    Raises:
        ContractError: A column is missing, a member id is missing or duplicated, a score is
            outside [0, 1], a rank is not a whole number or a time cannot be parsed.
    """
    _check_push_columns(frame, source)
    out = _with_methods(frame.reset_index(drop=True))
    for column in TEXT_COLUMNS:
        out[column] = _as_text(out[column])
    out["member_id"] = _member_ids(out["member_id"], source)
    _check_actions(out["action"], source)
    for column in SCORE_COLUMNS:
        out[column] = _scores(out[column], column, source)
    out["readiness_rank"] = _ranks(out["readiness_rank"], source)
    for column in TIME_COLUMNS:
        out[column] = _times(out[column], column, source)
    for column in BOOL_COLUMNS:
        out[column] = _parse_bool(out[column], source, column)
    if "consent" in out.columns:
        out["consent"] = _consent(out["consent"], source)
    extra = [c for c in out.columns if c not in PUSH_COLUMNS]
    return out[[*PUSH_COLUMNS, *extra]]


def _check_push_columns(frame: pd.DataFrame, source: str) -> None:
    """Raise :class:`ContractError` when a column every predictions table has is missing."""
    needed = [c for c in PUSH_COLUMNS if c not in _LATER_COLUMNS]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ContractError(
            f"{source}: missing column(s) {', '.join(missing)}; a predictions table needs "
            f"{', '.join(needed)} (re-run batch scoring to produce it)"
        )


def _member_ids(ids: pd.Series, source: str) -> pd.Series:
    """Member ids (text) trimmed; :class:`ContractError` when one is empty or repeated."""
    ids = ids.str.strip()
    blank = ids.isna() | (ids == "")
    if blank.any():
        raise ContractError(
            f"{source}: column member_id is empty in {format_rows(np.flatnonzero(blank))}; "
            "every prediction needs a member id"
        )
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        examples = ids[dup].drop_duplicates().head(3).tolist()
        raise ContractError(
            f"{source}: column member_id has {int(ids[dup].nunique())} "
            f"duplicated member id(s) in {format_rows(np.flatnonzero(dup))} (e.g. "
            f"{', '.join(repr(i) for i in examples)}); each member must appear once — "
            "de-duplicate or re-run batch scoring"
        )
    return ids


def _check_actions(actions: pd.Series, source: str) -> None:
    """Raise :class:`ContractError` on an action that is not one of :data:`ACTIONS`."""
    unknown = actions.notna() & ~actions.isin(ACTIONS)
    if unknown.any():
        raise ContractError(
            f"{source}: column action must be one of {', '.join(ACTIONS)} (or empty); bad values "
            f"in {format_rows(np.flatnonzero(unknown))}"
        )


def _scores(values: pd.Series, column: str, source: str) -> pd.Series:
    """A score column as ``float64``; :class:`ContractError` on a value outside [0, 1]."""
    scores = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = (scores.isna() & values.notna()) | (scores < 0) | (scores > 1)
    if bad.any():
        raise ContractError(
            f"{source}: column {column} must be a number in [0, 1] (or empty when not "
            f"eligible); bad values in {format_rows(np.flatnonzero(bad))}"
        )
    return scores


def _ranks(values: pd.Series, source: str) -> pd.Series:
    """``readiness_rank`` as ``Int64``; :class:`ContractError` unless a whole number >= 1."""
    ranks = pd.to_numeric(values, errors="coerce")
    bad = (ranks.isna() & values.notna()) | (ranks.notna() & (ranks % 1 != 0))
    bad |= ranks < 1
    if bad.any():
        raise ContractError(
            f"{source}: column readiness_rank must be a whole number >= 1 (or empty); bad values "
            f"in {format_rows(np.flatnonzero(bad))}"
        )
    return ranks.astype("Int64")


def _times(values: pd.Series, column: str, source: str) -> pd.Series:
    """A time column as tz-naive UTC datetimes; :class:`ContractError` on a value that is not
    a date."""
    times = values
    if not pd.api.types.is_datetime64_any_dtype(times.dtype):
        times = pd.to_datetime(times, errors="coerce", utc=True, format="mixed")
    bad = times.isna() & values.notna()
    if bad.any():
        raise ContractError(
            f"{source}: column {column} has values that are not dates in "
            f"{format_rows(np.flatnonzero(bad))}"
        )
    return to_utc_naive(times)


#: Prediction columns that files written before them lack (filled in by :func:`_with_methods`).
_LATER_COLUMNS = (*METHOD_COLUMNS, "action", "talking_point")


def _with_methods(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with the columns of :data:`_LATER_COLUMNS`: files written before the method
    columns get ``model`` / ``True`` where a model version is recorded (they came from learned
    models), NA elsewhere; before actions or talking points, NA."""
    out = frame.copy()
    for column in ("action", "talking_point"):
        if column not in out.columns:
            out[column] = pd.Series(pd.NA, index=out.index, dtype=object)
    for target in ("readiness", "disengagement"):
        has_model = out[f"{target}_model_version"].fillna("").astype("str") != ""
        if f"{target}_method" not in out.columns:
            out[f"{target}_method"] = pd.Series("model", index=out.index).where(has_model)
        if f"{target}_validated" not in out.columns:
            out[f"{target}_validated"] = pd.Series(True, index=out.index, dtype="boolean").where(
                has_model
            )
    return out


def _parse_bool(values: pd.Series, source: str, column: str) -> pd.Series:
    """Parse a true/false column (bool, 0/1 or true/false text) into nullable booleans."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean")
    text = values.astype("str").str.strip().str.lower().where(values.notna())
    mapping = {"true": True, "1": True, "1.0": True, "yes": True,
               "false": False, "0": False, "0.0": False, "no": False}
    parsed = text.map(mapping)
    bad = parsed.isna() & text.notna() & (text != "")
    if bad.any():
        raise ContractError(
            f"{source}: column {column} must be true/false; bad values in "
            f"{format_rows(np.flatnonzero(bad))}"
        )
    return parsed.astype("boolean")


def _consent(values: pd.Series, source: str) -> pd.Series:
    """A ``consent`` column read by the data contract's one rule (empty means consent)."""
    consent, _, bad = parse_consent(values)
    if bad.any():
        raise ContractError(
            f"{source}: column consent must be true/false (or 1/0, yes/no; empty means true); "
            f"bad values in {format_rows(np.flatnonzero(bad))}"
        )
    return consent


def select_consenting(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep only members who may be pushed.

    When a ``consent`` column is present, rows where it is false are refused; it is read by the
    data contract's rule (:func:`features.consent.parse_consent`: empty means consent).
    Without the column every row is kept (the scorer already dropped members without consent).

    Returns:
        The rows to push (index reset) and how many rows were refused for lack of consent.
    """
    if "consent" not in frame.columns:
        return frame.reset_index(drop=True), 0
    keep = frame["consent"].to_numpy(dtype=bool)
    return frame.loc[keep].reset_index(drop=True), int((~keep).sum())


def resolve_mapping(
    defaults: Mapping[str, str], overrides: Mapping[str, str | None] | None, pattern: str, what: str
) -> dict[str, str]:
    """Merge a user mapping (canonical field → CRM name; ``None`` drops a field) into defaults.

    Args:
        defaults: Default mapping for the sink.
        overrides: User choices, or ``None``.
        pattern: Regular expression every CRM name must match.
        what: Name of the thing mapped, for messages (e.g. ``"HubSpot property"``).

    Raises:
        ConfigError: Unknown canonical field, invalid or repeated CRM name.
    """
    known = {f.name for f in CRM_FIELDS}
    mapping = dict(defaults)
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ConfigError(
                f"{what} mapping: unknown field {key!r}; known fields are "
                f"{', '.join(sorted(known))}"
            )
        if value is None or value == "":
            mapping.pop(key, None)
        else:
            mapping[key] = str(value)
    bad = [v for v in mapping.values() if not re.fullmatch(pattern, v)]
    if bad:
        raise ConfigError(f"{what} mapping: invalid name(s) {', '.join(map(repr, bad))}")
    names = list(mapping.values())
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{what} mapping: several fields map to {', '.join(repeated)}")
    return mapping


def _score_text(values: pd.Series) -> pd.Series:
    rounded = values.round(SCORE_DECIMALS)
    return rounded.astype("str").where(values.notna())


def render_field_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Render the canonical CRM fields of validated predictions as text (missing = NA).

    Scores are rounded to 4 decimals (so noise below that does not count as a change), ranks are
    whole numbers, times are ISO 8601 UTC (``2024-05-01T00:00:00Z``), ``model_versions`` reads
    ``readiness=<v>; disengagement=<v>``, the methods are ``model`` or ``rule:<name>`` and the
    validated flags ``true`` / ``false`` (missing when that score has no model).

    Returns:
        One ``str`` column per :data:`CRM_FIELDS` entry, same index as ``frame``.
    """
    if any(c not in frame.columns for c in _LATER_COLUMNS):
        frame = _with_methods(frame)
    out = pd.DataFrame(index=frame.index)
    out["member_id"] = frame["member_id"].astype("str")
    out["readiness_score"] = _score_text(frame["readiness_score"])
    out["readiness_rank"] = frame["readiness_rank"].astype("str").where(
        frame["readiness_rank"].notna()
    )
    out["disengagement_score"] = _score_text(frame["disengagement_score"])
    out["segment"] = frame["segment"]
    out["action"] = frame["action"]
    out["reasons"] = frame["reasons"]
    out["talking_point"] = frame["talking_point"]
    for column in TIME_COLUMNS:
        out[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(frame[column].notna())
    readiness = frame["readiness_model_version"].fillna("none")
    disengagement = frame["disengagement_model_version"].fillna("none")
    out["model_versions"] = "readiness=" + readiness + "; disengagement=" + disengagement
    for target in ("readiness", "disengagement"):
        method = frame[f"{target}_method"]
        out[f"{target}_method"] = method.where(method.notna() & (method != ""))
        validated = frame[f"{target}_validated"].astype("boolean")
        out[f"{target}_validated"] = validated.map({True: "true", False: "false"}).where(
            validated.notna()
        )
    return out.astype("str").where(out.notna())


_HEX = np.frombuffer(b"0123456789abcdef", dtype="S1")


def hash_payloads(rendered: pd.DataFrame) -> pd.Series:
    """Return a 16-hex-digit fingerprint of every row (column names and values), vectorised.

    The fingerprint covers the record key and every payload column, so a change of a value, of
    the property mapping or of the record id all count as a change.
    """
    names = "\x1f".join(map(str, rendered.columns))
    row_hash = pd.util.hash_pandas_object(rendered, index=False).to_numpy(dtype=np.uint64)
    name_hash = pd.util.hash_pandas_object(pd.Series([names]), index=False).to_numpy(np.uint64)
    combined = row_hash ^ name_hash[0]
    raw = combined.astype(">u8").view(np.uint8).reshape(-1, 8)
    chars = np.empty((len(raw), 16), dtype="S1")
    chars[:, 0::2] = _HEX[raw >> 4]
    chars[:, 1::2] = _HEX[raw & 0x0F]
    text = chars.view("S16").ravel().astype(str)
    return pd.Series(text, index=rendered.index, dtype="str")
