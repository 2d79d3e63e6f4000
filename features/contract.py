"""The data contract: check a data source and normalise it into :class:`Tables`.

Three modules share the work: :mod:`features.contract_spec` says what the tables are (columns,
rules, how a problem is told), :mod:`features.sources` reads a source as it is and writes tables
back, and this module checks and normalises what was read (:func:`load_tables`,
:func:`validate_tables`, :func:`validate_outreach`). It also re-exports the public names of the
other two, so ``features.contract`` stays the one import for users. ``members`` and
``activities`` are required; ``roles``, ``chapters`` and ``outreach`` are optional. The full
contract, with every rule and an example of each error message, is in ``docs/data-contract.md``.

Checking is all-or-nothing by default: every problem found (missing files or columns,
unparseable dates, unknown ids, ...) is collected and raised together in one
:class:`ContractError` whose message names the file, the column, how many rows are affected and a
few examples (CSV rows by their line number in the file, other sources by row number). A strict
load never writes anything. ``load_tables(..., on_invalid="quarantine")`` instead sets aside the
rows that break a row-level rule (and the rows referring to them), up to a share of each table,
and writes them to quarantine files (:mod:`features.quarantine`).

Per-table column checks run as pandera schemas (lazy, so all failures are collected); the
cross-table checks (unknown members, counterparts and chapters) are vectorised set look-ups.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from features.consent import CONSENT_FALSE, CONSENT_TRUE, parse_consent
from features.contract_spec import (
    CANONICAL,
    FILE_FORMATS,
    ISO_HINT,
    OPTIONAL_TABLES,
    REQUIRED_TABLES,
    RULES,
    SPECS,
    TABLE_NAMES,
    TEXT_DTYPE,
    Locator,
    Problem,
    column_order,
    csv_line_numbers,
    examples_of,
    raise_problems,
    show_value,
    table_order,
)
from features.errors import ConfigError, ContractError
from features.quarantine import (
    DEFAULT_MAX_INVALID_SHARE,
    QuarantineReport,
    check_max_invalid_share,
    check_on_invalid,
    format_share,
    share_needed,
    write_quarantine_files,
)
from features.sources import (
    DATA_PASSWORD_VARIABLE,
    describe_source,
    is_url,
    password_to_environment,
    read_raw_tables,
    read_source,
    write_tables,
)
from features.tables import (
    Tables,
    parse_as_of,
)

__all__ = [
    "load_tables",
    "read_raw_tables",
    "validate_tables",
    "validate_outreach",
    "write_tables",
    "describe_source",
    "password_to_environment",
    "DATA_PASSWORD_VARIABLE",
    "REQUIRED_TABLES",
    "OPTIONAL_TABLES",
    "TABLE_NAMES",
    "FILE_FORMATS",
    "TEXT_DTYPE",
    "CONSENT_TRUE",
    "CONSENT_FALSE",
]

_TS_MIN = pd.Timestamp.min.as_unit("ns")
_TS_MAX = pd.Timestamp.max.as_unit("ns")


# --------------------------------------------------------------------------------------------
# Normalising columns
# --------------------------------------------------------------------------------------------


@dataclass
class _Parsed:
    """A normalised column plus the masks of raw values that were missing or malformed."""

    values: pd.Series
    missing: np.ndarray
    bad: np.ndarray


def _floats_as_text(values: pd.Series) -> pd.Series:
    """Render floats as text, whole numbers without a trailing ``.0`` (``1.0`` -> ``1``)."""
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    text = values.astype("str")
    whole = np.isfinite(numbers) & (np.abs(numbers) < 2**53)
    whole[whole] = numbers[whole] == np.round(numbers[whole])
    if whole.any():
        text = text.copy()
        text[whole] = numbers[whole].astype(np.int64).astype(str)
    return text


def _as_text(values: pd.Series) -> pd.Series:
    """Convert a raw column to the ``str`` dtype without any numeric artefacts."""
    dtype = values.dtype
    if pd.api.types.is_float_dtype(dtype):
        return _floats_as_text(values)
    if pd.api.types.is_object_dtype(dtype):
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind not in ("string", "empty", "integer", "boolean"):
            # Python floats among other values (e.g. from a SQL driver): 7.0 -> "7".
            is_float = values.map(lambda v: isinstance(v, float)).to_numpy(dtype=bool)
            if is_float.any():
                text = values.astype("str").copy()
                floats = pd.Series(values[is_float].to_numpy(dtype="float64"))
                text[is_float] = _floats_as_text(floats).to_numpy()
                return text
    return values.astype("str")


_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def _parse_text(values: pd.Series, lower: bool) -> _Parsed:
    text = _as_text(values).str.strip()
    if lower:
        text = text.str.lower()
    empty = text.eq("").to_numpy(dtype=bool, na_value=False)
    if empty.any():
        text = text.mask(empty)
    missing = text.isna().to_numpy()
    # A NUL or another control character is never part of an id, an email or a name; it is
    # what a broken export leaves behind, and a CRM or a spreadsheet would choke on it.
    control = text.str.contains(_CONTROL, regex=True).to_numpy(dtype=bool, na_value=False)
    return _Parsed(text.astype(TEXT_DTYPE), missing, control)


def _parse_timestamp(values: pd.Series) -> _Parsed:
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC").dt.tz_localize(None)
        missing = parsed.isna().to_numpy()
    elif pd.api.types.is_datetime64_dtype(dtype):
        parsed = values
        missing = parsed.isna().to_numpy()
    elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        missing = values.isna().to_numpy()
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    else:
        if pd.api.types.is_object_dtype(dtype) and (
            pd.api.types.infer_dtype(values, skipna=True) != "string"
        ):
            # Datetime objects (e.g. from a SQL driver), possibly mixed with text.
            cleaned = values.mask(values.eq("").to_numpy(dtype=bool, na_value=False))
        else:
            cleaned = values.astype("str").str.strip()
            empty = cleaned.eq("").to_numpy(dtype=bool, na_value=False)
            if empty.any():
                cleaned = cleaned.mask(empty)
        missing = cleaned.isna().to_numpy()
        parsed = pd.to_datetime(cleaned, utc=True, format="ISO8601", errors="coerce")
        parsed = parsed.dt.tz_localize(None)
    if (
        parsed.dtype != np.dtype("datetime64[ns]")
        and len(parsed)
        and (parsed.min() < _TS_MIN or parsed.max() > _TS_MAX)
    ):
        out_of_range = (parsed.notna() & ((parsed < _TS_MIN) | (parsed > _TS_MAX))).to_numpy()
        parsed = parsed.mask(out_of_range)
    parsed = parsed.astype("datetime64[ns]")
    bad = ~missing & parsed.isna().to_numpy()
    return _Parsed(parsed, missing, bad)


def _parse_weight(values: pd.Series) -> _Parsed:
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        missing = values.isna().to_numpy()
        return _Parsed(pd.Series(np.nan, index=values.index), missing, ~missing)
    if pd.api.types.is_numeric_dtype(dtype):
        numbers = values.astype("float64")
        missing = numbers.isna().to_numpy()
    else:
        text = values.astype("str").str.strip()
        text = text.mask(text.eq("").to_numpy(dtype=bool, na_value=False))
        missing = text.isna().to_numpy()
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    finite = np.isfinite(numbers.to_numpy())
    bad = ~missing & ~finite
    numbers = numbers.where(finite)
    return _Parsed(numbers, missing, bad)


def _parse_consent(values: pd.Series) -> _Parsed:
    return _Parsed(*parse_consent(values))


_PARSERS: dict[str, Callable[[pd.Series], _Parsed]] = {
    "id": lambda s: _parse_text(s, lower=False),
    "text": lambda s: _parse_text(s, lower=False),
    "vocab": lambda s: _parse_text(s, lower=True),
    "timestamp": _parse_timestamp,
    "weight": _parse_weight,
    "consent": _parse_consent,
}


def _default_column(kind: str, n: int) -> pd.Series:
    if kind == "weight":
        return pd.Series(np.ones(n), dtype="float64")
    if kind == "consent":
        return pd.Series(np.ones(n, dtype=bool))
    if kind == "timestamp":
        return pd.Series(pd.NaT, index=pd.RangeIndex(n), dtype="datetime64[ns]")
    return pd.Series(np.full(n, np.nan, dtype=object)).astype(TEXT_DTYPE)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@dataclass
class _TableState:
    """One table during validation."""

    name: str
    raw: pd.DataFrame
    display: str
    locator: Locator
    present: set[str]
    parsed: dict[str, _Parsed] = field(default_factory=dict)

    def column(self, name: str) -> pd.Series:
        return self.parsed[name].values


def _display_name(table: str, files: Mapping[str, str] | None) -> str:
    label = (files or {}).get(table)
    if not label:
        return table
    if is_url(label):
        return "table " + label.rsplit(" table ", 1)[-1]
    return Path(label).name


def _locator_for(table: str, files: Mapping[str, str] | None) -> Locator:
    label = (files or {}).get(table, "")
    if label.lower().endswith(".csv") and not is_url(label) and Path(label).is_file():
        return Locator(csv_path=Path(label))
    return Locator()


def _normalise_names(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Strip and lower-case column names; report names that collide afterwards."""
    names = [str(c).strip().lower() for c in frame.columns]
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    duplicates = sorted(n for n, k in seen.items() if k > 1)
    frame = frame.copy(deep=False)
    frame.columns = names
    if duplicates:
        frame = frame.loc[:, ~frame.columns.duplicated()]
    return frame, duplicates


def _mask_check(mask: np.ndarray, name: str) -> pa.Check:
    """A pandera check that fails exactly where ``mask`` is true (nulls are not skipped)."""
    return pa.Check(
        lambda s: pd.Series(~mask, index=s.index),
        name=name,
        ignore_na=False,
        element_wise=False,
    )


def _unique_check() -> pa.Check:
    return pa.Check(
        lambda s: ~(s.duplicated(keep=False) & s.notna()),
        name="unique",
        ignore_na=False,
    )


def _choice_check(choices: tuple[str, ...]) -> pa.Check:
    return pa.Check(lambda s: s.isin(choices) | s.isna(), name="choice", ignore_na=False)


_PANDERA_RULES = {
    "not_nullable": "required",
    "greater_than_or_equal_to(0)": "negative",
}


def _schema_for(state: _TableState) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {}
    for spec in SPECS[state.name]:
        if spec.name not in state.present:
            continue
        parsed = state.parsed[spec.name]
        checks: list[pa.Check] = []
        nullable = True
        if spec.kind in ("id", "text", "vocab"):
            nullable = spec.nullable
            checks.append(_mask_check(parsed.bad, "control"))
            if spec.choices:
                checks.append(_choice_check(spec.choices))
            if spec.unique:
                checks.append(_unique_check())
        elif spec.kind == "timestamp":
            if not spec.nullable:
                checks.append(_mask_check(parsed.missing, "required"))
            checks.append(_mask_check(parsed.bad, "timestamp"))
        elif spec.kind == "weight":
            checks.append(_mask_check(parsed.bad, "number"))
            checks.append(pa.Check.ge(0))
        elif spec.kind == "consent":
            checks.append(_mask_check(parsed.bad, "consent"))
        columns[spec.name] = pa.Column(nullable=nullable, checks=checks, required=True)
    return pa.DataFrameSchema(columns, name=state.name, strict=False)


def _choices_of(column: str) -> tuple[str, ...]:
    """The values a fixed-vocabulary column allows (column names are unique across them)."""
    return next(c.choices for cs in SPECS.values() for c in cs if c.name == column and c.choices)


def _rule_text(rule: str, column: str) -> str:
    texts = {
        "required": f"where {column} is empty (a value is required)",
        "control": f"where {column} holds a control character (such as a NUL byte)",
        "unique": f"where {column} is not unique (each {column} may appear only once)",
        "timestamp": f"where {column} is not an ISO 8601 timestamp ({ISO_HINT}) "
        "within the years 1678-2261",
        "number": f"where {column} is not a number",
        "negative": f"where {column} is negative (it must be >= 0)",
        "consent": f"where {column} is not one of true/false/1/0/yes/no (empty means true)",
    }
    if rule == "choice":
        return f"where {column} is not one of {'/'.join(_choices_of(column))}"
    return texts[rule]


# --------------------------------------------------------------------------------------------
# Row-level findings
# --------------------------------------------------------------------------------------------

# Rule ids written to quarantine files, where they differ from the internal names.
_QUARANTINE_RULES = {"unique": "duplicate"}
_ORPHAN_ORDER = len(RULES) + 1


@dataclass(frozen=True, eq=False)
class _Finding:
    """Rows of one table that break one row-level rule.

    ``positions`` are 0-based rows of the raw table; ``what`` is the rule as the strict message
    words it (``where weight is negative (it must be >= 0)``); ``rule`` the short id written to
    quarantine files; ``render`` shows the offending raw value of a row (``None``: no value).
    """

    state: _TableState
    column: str
    rule: str
    what: str
    positions: np.ndarray
    order: tuple[int, int, int]
    render: Callable[[int], str] | None = None

    def problem(self) -> Problem:
        """The finding as one problem line of a refusal message."""
        return Problem(
            self.state.display,
            self.what,
            column=self.column,
            rows=len(self.positions),
            examples=examples_of(self.state.locator, self.positions, self.render),
            order=self.order,
        )

    def detail(self, position: int, label: str) -> str:
        """One row's message: file, line (or row), column, the rule broken and the value."""
        text = self.what.removeprefix("where ")
        found = f" (found {self.render(position)})" if self.render is not None else ""
        return f"{self.state.display}, {label}, column {self.column}: {text}{found}"


def _finding_key(finding: _Finding) -> tuple:
    """Order of the rules a row breaks: its own defects first, then orphaned references."""
    return (finding.rule == "orphan", finding.order)


def _column_findings(state: _TableState) -> list[_Finding]:
    """Run the table's pandera schema and turn its failure cases into findings."""
    frame = pd.DataFrame({name: state.column(name) for name in state.parsed})
    try:
        _schema_for(state).validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    findings = []
    cases = cases[cases["index"].notna()]
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        column = str(column)
        rule = _PANDERA_RULES.get(str(check), str(check))
        if rule in RULES:
            what, rule_order = _rule_text(rule, column), RULES.index(rule)
        else:
            what, rule_order = f"that fail the check {check}", len(RULES)
        raw_column = state.raw[column]
        render = None if rule == "required" else (lambda p, s=raw_column: show_value(s.iat[p]))
        findings.append(
            _Finding(
                state,
                column,
                _QUARANTINE_RULES.get(rule, rule),
                what,
                np.unique(group["index"].to_numpy(dtype=np.int64)),
                (table_order(state.name), column_order(state.name, column), rule_order),
                render,
            )
        )
    return findings


def _beyond_first(finding: _Finding) -> _Finding:
    """A duplicate-id finding reduced to the repeats: the first row of each id is kept."""
    if finding.rule != "duplicate":
        return finding
    values = finding.state.column(finding.column)
    repeats = (values.duplicated(keep="first") & values.notna()).to_numpy()
    return replace(finding, positions=np.flatnonzero(repeats))


def _isin(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """Vectorised membership test of text values (missing values are never members)."""
    try:
        hits = pc.is_in(
            pa_arrow.array(values, from_pandas=True),
            value_set=pa_arrow.array(allowed.dropna(), from_pandas=True),
        )
        return np.asarray(pc.fill_null(hits, False).to_numpy(zero_copy_only=False), dtype=bool)
    except (pa_arrow.ArrowException, TypeError):
        return values.isin(set(allowed.dropna())).to_numpy(dtype=bool)


def _reference_findings(
    state: _TableState,
    column: str,
    allowed: pd.Series,
    rule: str,
    target: str,
    kept: pd.Series | None = None,
) -> list[_Finding]:
    """Values of ``column`` not in ``allowed`` and, with ``kept``, in it but quarantined."""
    if column not in state.present:
        return []
    values = state.column(column)
    present = values.notna().to_numpy()
    known = _isin(values, allowed)
    raw_column = state.raw[column]

    def render(p: int) -> str:
        return show_value(raw_column.iat[p])

    order = (table_order(state.name), column_order(state.name, column), RULES.index(rule))
    findings = []
    unknown = present & ~known
    if unknown.any():
        rule_id = "unknown_counterpart" if column == "counterpart_id" else rule
        what = f"where {column} is not in {target}"
        findings.append(
            _Finding(state, column, rule_id, what, np.flatnonzero(unknown), order, render)
        )
    if kept is not None:
        orphan = present & known & ~_isin(values, kept)
        if orphan.any():
            what = f"where {column} refers to a quarantined row of {target}"
            order = (order[0], order[1], _ORPHAN_ORDER)
            positions = np.flatnonzero(orphan)
            findings.append(_Finding(state, column, "orphan", what, positions, order, render))
    return findings


#: The tables whose rows are spans: (start column, end column, what the end may not precede).
_SPANS = {
    "roles": ("started_at", "ended_at", "a role cannot end before it starts"),
    "outreach": ("contacted_at", "outcome_at", "an outcome cannot come before the contact"),
}


def _span_findings(state: _TableState) -> list[_Finding]:
    """Rows whose end column lies before their start column (rule ``ends_before_start``)."""
    if state.name not in _SPANS:
        return []
    start, end, why = _SPANS[state.name]
    if not {start, end} <= state.present:
        return []
    began, ended = state.column(start), state.column(end)
    wrong = (began.notna() & ended.notna() & (ended < began)).to_numpy()
    if not wrong.any():
        return []
    raw_start, raw_end = state.raw[start], state.raw[end]

    def render(p: int) -> str:
        return f"{start} {show_value(raw_start.iat[p])}, {end} {show_value(raw_end.iat[p])}"

    order = (
        table_order(state.name),
        column_order(state.name, end),
        RULES.index("ends_before_start"),
    )
    what = f"where {end} is before {start} ({why})"
    positions = np.flatnonzero(wrong)
    return [_Finding(state, end, "ends_before_start", what, positions, order, render)]


def _primary_rules(n: int, findings: Sequence[_Finding]) -> np.ndarray:
    """Per raw row, the first rule it breaks (``None`` for a valid row)."""
    rules = np.full(n, None, dtype=object)
    for finding in sorted(findings, key=_finding_key):
        positions = finding.positions[pd.isna(rules[finding.positions])]
        rules[positions] = finding.rule
    return rules


def _kept_ids(state: _TableState, findings: Sequence[_Finding], column: str) -> pd.Series:
    """The ids of the rows of ``state`` that no finding sets aside."""
    dropped = pd.notna(_primary_rules(len(state.raw), findings))
    return state.column(column)[~dropped]


#: The timestamp of each table that cannot lie after the run (role ends may be planned).
_NOT_IN_FUTURE = {
    "members": "joined_at",
    "activities": "occurred_at",
    "roles": "started_at",
    "outreach": "contacted_at",
}


def _future_findings(state: _TableState, now: pd.Timestamp) -> list[_Finding]:
    """Rows dated after the day after ``now``: a typo (2099) or a broken clock, never data.

    One such row would move the default scoring date to its day and leave everybody dormant.
    """
    column = _NOT_IN_FUTURE.get(state.name)
    if column is None or column not in state.present:
        return []
    limit = now.normalize() + pd.Timedelta(days=2)
    values = state.column(column)
    late = (values.notna() & (values >= limit)).to_numpy()
    if not late.any():
        return []
    raw = state.raw[column]
    return [
        _Finding(
            state,
            column,
            "future",
            f"where {column} is in the future (on or after {limit:%Y-%m-%d}; this run is on "
            f"{now:%Y-%m-%d})",
            np.flatnonzero(late),
            (table_order(state.name), column_order(state.name, column), RULES.index("future")),
            lambda p: show_value(raw.iat[p]),
        )
    ]


def _row_findings(
    states: Mapping[str, _TableState], quarantine: bool, now: pd.Timestamp
) -> dict[str, list[_Finding]]:
    """Every row-level finding, by table.

    In quarantine mode a duplicated id keeps its first row, and a reference to a row that is set
    aside (a quarantined chapter or member) is an ``orphan`` finding, so the rows kept are
    consistent. Chapters are settled before members, members before activities and roles.
    """
    found = {
        name: _column_findings(state) + _future_findings(state, now)
        for name, state in states.items()
    }
    if quarantine:
        found = {
            name: [f for f in map(_beyond_first, fs) if len(f.positions)]
            for name, fs in found.items()
        }
    for name, state in states.items():
        found[name] += _span_findings(state)
    chapters = states.get("chapters")
    if chapters is not None and "chapter_id" in chapters.present:
        ids = chapters.column("chapter_id")
        kept = _kept_ids(chapters, found["chapters"], "chapter_id") if quarantine else None
        target = f"{chapters.display} (chapter_id)"
        for name in ("members", "activities", "roles"):
            if name in states:
                found[name] += _reference_findings(
                    states[name], "chapter_id", ids, "unknown_chapter", target, kept
                )
    members = states.get("members")
    if members is not None and "member_id" in members.present:
        ids = members.column("member_id")
        kept = _kept_ids(members, found["members"], "member_id") if quarantine else None
        target = f"{members.display} (member_id)"
        for name, column in (
            ("activities", "member_id"),
            ("activities", "counterpart_id"),
            ("roles", "member_id"),
            ("outreach", "member_id"),
        ):
            if name in states:
                found[name] += _reference_findings(
                    states[name], column, ids, "unknown_member", target, kept
                )
    return found


# --------------------------------------------------------------------------------------------
# Building the tables
# --------------------------------------------------------------------------------------------


def _finish_table(state: _TableState) -> pd.DataFrame:
    n = len(state.raw)
    columns = {}
    for spec in SPECS[state.name]:
        if spec.name in state.present:
            series = state.column(spec.name).reset_index(drop=True)
            if spec.kind == "weight":
                series = series.fillna(1.0).astype("float64")
        else:
            series = _default_column(spec.kind, n)
        columns[spec.name] = series
    frame = pd.DataFrame(columns, index=pd.RangeIndex(n))
    return frame[CANONICAL[state.name]]


def _sort_activities(frame: pd.DataFrame) -> pd.DataFrame:
    occurred = frame["occurred_at"]
    if occurred.is_monotonic_increasing:
        return frame
    order = np.argsort(occurred.to_numpy().view("int64"), kind="stable")
    return frame.take(order).reset_index(drop=True)


def _build_tables(
    states: Mapping[str, _TableState], source: str, quarantine: QuarantineReport | None = None
) -> Tables:
    return Tables(
        members=_finish_table(states["members"]),
        activities=_sort_activities(_finish_table(states["activities"])),
        roles=_finish_table(states["roles"]) if "roles" in states else None,
        chapters=_finish_table(states["chapters"]) if "chapters" in states else None,
        outreach=_finish_table(states["outreach"]) if "outreach" in states else None,
        source=source,
        quarantine=quarantine,
    )


def _subset(state: _TableState, keep: np.ndarray) -> _TableState:
    """The table restricted to the rows where ``keep`` is true (re-numbered from 0)."""
    if keep.all():
        return state
    rows = np.flatnonzero(keep)
    parsed = {
        name: _Parsed(p.values.iloc[rows].reset_index(drop=True), p.missing[rows], p.bad[rows])
        for name, p in state.parsed.items()
    }
    raw = state.raw.iloc[rows].reset_index(drop=True)
    return _TableState(state.name, raw, state.display, Locator(), state.present, parsed)


# --------------------------------------------------------------------------------------------
# Quarantine
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Policy:
    """How a quarantine load behaves: the share limit and where the rejected rows go."""

    max_invalid_share: float
    quarantine_dir: Path | None


def _rule_counts(rules: np.ndarray) -> dict[str, int]:
    """Rows set aside by rule, most frequent first (ties by rule id)."""
    counts = pd.Series(rules[pd.notna(rules)], dtype=object).value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _refuse_too_many(
    source: str,
    states: Mapping[str, _TableState],
    found: Mapping[str, list[_Finding]],
    rules: Mapping[str, np.ndarray],
    limit: float,
) -> None:
    """Raise when a table has more invalid rows than ``limit`` allows, or no valid row left."""
    lines, needed = [], 0.0
    for name, state in states.items():
        n, bad = len(state.raw), int(pd.notna(rules[name]).sum())
        share = bad / n if n else 0.0
        if not (share > limit or (bad == n > 0 and name in REQUIRED_TABLES)):
            continue
        broken = ", ".join(f"{rule} {count:,}" for rule, count in _rule_counts(rules[name]).items())
        lines.append(
            f"  - {state.display}: {bad:,} of {n:,} rows ({format_share(share)}) break the "
            f"contract: {broken}" + (" (no valid row would be left)" if bad == n else "")
        )
        if bad < n or name not in REQUIRED_TABLES:  # a higher limit would admit these
            needed = max(needed, share)
    if not lines:
        return
    problems = sorted((f.problem() for fs in found.values() for f in fs), key=lambda p: p.order)
    head = (
        f"Data source {source} has too many invalid rows to set aside (--on-invalid quarantine "
        f"allows at most {format_share(limit)} of each table's rows):"
    )
    advice = "Nothing was loaded or written. Fix these in the source (see docs/data-contract.md)"
    if needed > limit:
        value = share_needed(needed)
        advice += f", or raise the limit with --max-invalid-share {value}"
    body = [head, *lines, "The invalid rows:", *(f"  - {p.render()}" for p in problems)]
    raise ContractError("\n".join([*body, advice + "."]))


def _quarantine_frame(
    state: _TableState, findings: Sequence[_Finding], rules: np.ndarray
) -> pd.DataFrame:
    """The set-aside rows as read (all their columns) plus ``rule`` and ``detail``."""
    positions = np.flatnonzero(pd.notna(rules))
    labels = dict(zip(positions.tolist(), state.locator.labels(positions), strict=True))
    details: dict[int, list[str]] = {int(p): [] for p in positions}
    for finding in sorted(findings, key=_finding_key):
        for p in finding.positions.tolist():
            details[p].append(finding.detail(p, labels[p]))
    frame = state.raw.iloc[positions].reset_index(drop=True)
    rule_column, detail_column = ("rule", "detail")
    if {"rule", "detail"} & set(frame.columns):  # never overwrite a column of the source
        rule_column, detail_column = ("quarantine_rule", "quarantine_detail")
    return frame.assign(
        **{
            rule_column: rules[positions].astype(str),
            detail_column: [" | ".join(details[int(p)]) for p in positions],
        }
    )


def _write_quarantine(folder: Path, frames: Mapping[str, pd.DataFrame]) -> dict[str, Path]:
    try:
        return write_quarantine_files(folder, frames, tuple(frames))
    except OSError as exc:
        raise ConfigError(
            f"quarantine_dir: cannot write the quarantine files to {folder} ({exc})"
        ) from exc


def _quarantine_load(
    states: Mapping[str, _TableState],
    found: Mapping[str, list[_Finding]],
    source: str,
    policy: _Policy,
) -> Tables:
    """Set the invalid rows aside (refusing above the share limit) and build the tables."""
    rules = {name: _primary_rules(len(state.raw), found[name]) for name, state in states.items()}
    _refuse_too_many(source, states, found, rules, policy.max_invalid_share)
    paths: dict[str, Path] = {}
    if policy.quarantine_dir is not None:
        frames = {
            name: _quarantine_frame(state, found[name], rules[name])
            for name, state in states.items()
        }
        paths = _write_quarantine(policy.quarantine_dir, frames)
    report = QuarantineReport(
        rows_in={name: len(state.raw) for name, state in states.items()},
        rows_quarantined={name: int(pd.notna(r).sum()) for name, r in rules.items()},
        by_rule={name: _rule_counts(r) for name, r in rules.items()},
        paths=paths,
        max_invalid_share=policy.max_invalid_share,
    )
    kept = {name: _subset(state, pd.isna(rules[name])) for name, state in states.items()}
    return _build_tables(kept, source, report)


# --------------------------------------------------------------------------------------------
# Validation entry points
# --------------------------------------------------------------------------------------------


def _missing_table_text(
    table: str, source_kind: str, found_names: Sequence[str], where_hint: str
) -> str:
    found = ", ".join(found_names) if found_names else "none"
    if source_kind == "folder":
        return (
            f"required table is missing: expected {table}.csv or {table}.parquet in "
            f"{where_hint}; files found: {found}"
        )
    if source_kind == "sql":
        return (
            f"required table is missing: expected a table named {table} in {where_hint}; "
            f"tables found: {found}"
        )
    return f"required table is missing: no frame named {table} was given"


def _table_state(
    table: str, frame: pd.DataFrame, files: Mapping[str, str] | None, problems: list[Problem]
) -> _TableState:
    """Parse one raw table; table-level problems (column names, empty table) go to ``problems``."""
    frame, duplicates = _normalise_names(frame.reset_index(drop=True))
    display = _display_name(table, files)
    order = (table_order(table), -1, 0)
    if duplicates:
        problems.append(
            Problem(
                display,
                "has duplicate column names (after trimming and ignoring case): "
                + ", ".join(duplicates),
                order=order,
            )
        )
    specs = SPECS[table]
    absent = [c.name for c in specs if c.required and c.name not in frame.columns]
    if absent:
        plural = "s" if len(absent) > 1 else ""
        problems.append(
            Problem(
                display,
                f"missing required column{plural} {', '.join(absent)}; columns found: "
                + (", ".join(map(str, frame.columns)) or "none"),
                order=order,
            )
        )
    if table in REQUIRED_TABLES and len(frame) == 0:
        problems.append(Problem(display, "has no rows: the table must not be empty", order=order))
    present = {c.name for c in specs if c.name in frame.columns}
    state = _TableState(table, frame, display, _locator_for(table, files), present)
    for spec in specs:
        if spec.name in present:
            state.parsed[spec.name] = _PARSERS[spec.kind](frame[spec.name])
            if spec.choices:
                state.parsed[spec.name] = _as_choice(state.parsed[spec.name])
    return state


def _as_choice(parsed: _Parsed) -> _Parsed:
    """A fixed-vocabulary value as the contract spells it: ``No answer`` is ``no_answer``."""
    values = parsed.values.str.replace(r"[\s\-]+", "_", regex=True).astype(TEXT_DTYPE)
    return _Parsed(values, parsed.missing, parsed.bad)


def _validate(
    frames: Mapping[str, pd.DataFrame | None],
    source: str,
    files: Mapping[str, str] | None,
    problems: list[Problem],
    unreadable: set[str],
    found_names: Sequence[str] = (),
    where_hint: str = "",
    source_kind: str = "memory",
    policy: _Policy | None = None,
    now=None,
) -> Tables:
    """Check and normalise raw frames; ``policy`` set means quarantine invalid rows; ``now``
    (default: the wall clock) is the time rows may not lie after."""
    states: dict[str, _TableState] = {}
    for table in TABLE_NAMES:
        frame = frames.get(table)
        if frame is None:
            if table in REQUIRED_TABLES and table not in unreadable:
                problems.append(
                    Problem(
                        table,
                        _missing_table_text(table, source_kind, found_names, where_hint),
                        order=(table_order(table), -1, 0),
                    )
                )
            continue
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{table}: expected a pandas DataFrame, got {type(frame).__name__}")
        states[table] = _table_state(table, frame, files, problems)

    # Table-level problems refuse the source in every mode, with every row problem listed too.
    quarantine = policy is not None and not problems
    now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else parse_as_of(now)
    found = _row_findings(states, quarantine, now)
    if quarantine:
        return _quarantine_load(states, found, source, policy)
    problems.extend(f.problem() for fs in found.values() for f in fs)
    if problems:
        raise_problems(source, problems)
    return _build_tables(states, source)


def validate_tables(
    frames: Mapping[str, pd.DataFrame | None],
    source: str = "<memory>",
    files: Mapping[str, str] | None = None,
    now=None,
) -> Tables:
    """Check raw frames against the contract and normalise them into :class:`Tables`.

    Args:
        frames: Raw frames by table name (``members`` and ``activities`` required, ``roles``
            and ``chapters`` optional; other keys are ignored). Column names are matched after
            trimming and lower-casing; columns outside the contract are dropped.
        source: Label of the data source for messages and :attr:`Tables.source`.
        files: For each table, the file path (or SQL label) it was read from. CSV paths let the
            messages give line numbers in the file; otherwise rows are numbered from 1.
        now: The time of the run (default: the wall clock): joins, activities and role starts
            from the day after next on are refused (rule ``future``).

    Returns:
        The normalised tables (canonical columns and dtypes, activities sorted by time).

    Raises:
        ContractError: Listing every problem found.
    """
    return _validate(frames, source, files, problems=[], unreadable=set(), now=now)


def validate_outreach(
    frame: pd.DataFrame,
    source: str = "<outreach>",
    files: Mapping[str, str] | None = None,
    now=None,
    rows: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Check one ``outreach`` frame on its own, with the rules :func:`validate_tables` applies
    to it (columns, vocabularies, timestamps, outcome not before the contact, not in the future)
    but without the member reference, which needs the members table.

    Args:
        frame: Raw outreach rows (column names matched after trimming and lower-casing).
        source: Label of the source for the message.
        files: ``{"outreach": path}`` when the rows come from a file (CSV: line numbers).
        now: The time of the run (default: the wall clock).
        rows: For each row of ``frame``, its data-row position in that CSV file, when ``frame``
            holds only some of the file's rows (messages then name the right lines).

    Returns:
        The normalised outreach table (canonical columns and dtypes).

    Raises:
        ContractError: Listing every problem found.
    """
    problems: list[Problem] = []
    state = _table_state("outreach", frame, files, problems)
    if rows and state.locator.csv_path is not None:
        lines = csv_line_numbers(state.locator.csv_path, list(rows))
        state.locator = Locator(
            state.locator.csv_path,
            {i: lines.get(int(r), int(r) + 2) for i, r in enumerate(rows)},
        )
    if not problems:
        now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else parse_as_of(now)
        found = _column_findings(state) + _future_findings(state, now) + _span_findings(state)
        problems.extend(f.problem() for f in found)
    if problems:
        raise_problems(source, problems)
    return _finish_table(state)


def load_tables(
    source: str | os.PathLike,
    *,
    on_invalid: str = "strict",
    max_invalid_share: float = DEFAULT_MAX_INVALID_SHARE,
    quarantine_dir: str | os.PathLike | None = None,
    now=None,
) -> Tables:
    """Read, check and normalise a data source.

    With ``on_invalid="strict"`` (the default) any problem refuses the source. With
    ``on_invalid="quarantine"``, rows that break a row-level rule (a missing or malformed value,
    a negative weight, a repeated id after its first row, an unknown member, counterpart or
    chapter, a role ending before it starts) are set aside instead, together with the rows that
    refer to a member or chapter set aside (rule ``orphan``). Table-level problems (the source
    cannot be read, a required table or column is missing, a required table is empty) still
    refuse it, and so does a table with more than ``max_invalid_share`` of its rows invalid;
    nothing is written then. Otherwise the rows set aside are written, with a ``rule`` and a
    ``detail`` column, to ``<quarantine_dir>/<table>.quarantine.csv`` (atomically, only for
    tables with such rows) and counted in ``tables.quarantine``.

    Args:
        source: A folder of ``<table>.csv`` / ``<table>.parquet`` files or a SQLAlchemy URL
            (``sqlite:///path.db``, ``postgresql+psycopg2://user:password@host/db``).
        on_invalid: ``"strict"`` or ``"quarantine"``.
        max_invalid_share: With quarantine: the largest share of any table's rows that may be
            set aside (0-1; default 0.01).
        quarantine_dir: With quarantine: the folder of the quarantine files (``None``: count
            the rows set aside, write nothing).
        now: The time of the run (default: the wall clock): joins, activities and role starts
            from the day after next on are refused, or set aside (rule ``future``).

    Returns:
        The validated :class:`Tables`; ``source`` is set to :func:`describe_source`'s label;
        ``quarantine`` is a :class:`~features.quarantine.QuarantineReport` with quarantine and
        ``None`` when strict.

    Raises:
        ContractError: Every problem found, reading and content together, in one message; or,
            with quarantine, the invalid rows when they are too many.
        ConfigError: An invalid ``on_invalid`` or ``max_invalid_share``, or quarantine files
            that cannot be written.
    """
    check_on_invalid(on_invalid)
    policy = None
    if on_invalid == "quarantine":
        folder = None if quarantine_dir is None else Path(quarantine_dir)
        policy = _Policy(check_max_invalid_share(max_invalid_share), folder)
    label = describe_source(source)
    raw = read_source(source)
    if raw.fatal:
        raise_problems(label, raw.problems)
    return _validate(
        raw.frames,
        label,
        raw.files,
        problems=list(raw.problems),
        unreadable=raw.unreadable,
        found_names=raw.found_names,
        where_hint=raw.where_hint,
        source_kind=raw.kind,
        policy=policy,
        now=now,
    )


