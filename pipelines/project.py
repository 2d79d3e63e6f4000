"""The project file: one configuration per community, read by every command and both flows.

``corecast.toml`` says once what a community is (its data, the role that marks its core, the label
windows, the segments, the sink, the schedules), so that a scheduled run trains and scores exactly
as the same command run by hand. Where a value comes from, weakest first:

1. the default (the home of each default stays where it was: :class:`features.labels.LabelConfig`,
   :class:`serving.segments.SegmentConfig`, ...);
2. the project file: ``--config FILE``, else ``$CORECAST_CONFIG``, else ``./corecast.toml``, else
   ``<corecast home>/corecast.toml`` (none is fine: the defaults apply);
3. the environment: ``CORECAST_<SECTION>_<KEY>`` (``CORECAST_LABELS_CORE_ROLE=maintainer``);
4. a command-line option, for one run.

Secrets never go in the file: tokens stay in their environment variables
(``CORECAST_HUBSPOT_TOKEN`` ...), and a data URL names its password as ``${NAME}``.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from features.errors import ConfigError
from features.feature_config import FeatureConfig
from features.labels import LabelConfig
from features.settings import corecast_home
from models.config import TrainConfig
from pipelines.deploy import DEFAULT_MONTHLY_CRON, DEFAULT_TIMEZONE, DEFAULT_WEEKLY_CRON
from serving.columns import OMITTABLE_FIELDS
from serving.delivery import DEFAULT_HOLDOUT_SHARE, DEFAULT_MIN_DELIVERED_SHARE
from serving.segments import SegmentConfig

#: A CRM field that can be left out of pushes.
CrmField = Literal[OMITTABLE_FIELDS]

__all__ = [
    "FILE_NAME",
    "CONFIG_ENV",
    "Project",
    "SECTIONS",
    "Effective",
    "find_project_file",
    "load_effective",
    "starter_file",
    "propose_labels",
    "weekly_parameters",
    "monthly_parameters",
    "check_crm_url",
    "shown",
]

FILE_NAME = "corecast.toml"
CONFIG_ENV = "CORECAST_CONFIG"
_ENV_PREFIX = "CORECAST_"
_LABELS = LabelConfig()
_SEGMENTS = SegmentConfig()
_FEATURES = FeatureConfig()
_TRAINING = {name: f.default for name, f in TrainConfig.__dataclass_fields__.items()}
#: The longest label window a project may set (ten years).
MAX_DURATION_DAYS = 3650


def _checked(check, value: Any, name: str) -> Any:
    """``check(value, name)``, its :class:`ConfigError` turned into the ``ValueError`` a
    validator raises (the message without the ``name:`` prefix the key replaces)."""
    try:
        return check(value, name)
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix(f"{name}: ")) from None


def _no_bool(value: Any) -> Any:
    """TOML's true/false is not a number (pydantic would read it as 1 or 0)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


Share = Annotated[float, BeforeValidator(_no_bool), Field(ge=0.0, le=1.0, allow_inf_nan=False)]
#: A name written in the data (an activity type, a role): not empty, not only blanks.
Name = Annotated[str, Field(min_length=1, pattern=r"\S")]


def _days(value: int) -> str:
    return f"{value}d"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSection(_Section):
    """Where the community's tables are, where outputs go, and what to do with invalid rows."""

    source: str | None = None
    out: str | None = None
    on_invalid: Literal["strict", "quarantine"] = "strict"
    max_invalid_share: Share = 0.01
    quarantine_dir: str | None = None


class LabelsSection(_Section):
    """The community's vocabulary and the label windows (durations: ``90d``, ``12w``, ``1y``)."""

    core_role: str = _LABELS.core_role
    horizon: str = _days(_LABELS.horizon_days)
    readiness_horizon: str = _days(_LABELS.readiness_horizon_days)
    active_within: str = _days(_LABELS.active_within_days)

    @field_validator("horizon", "readiness_horizon", "active_within")
    @classmethod
    def _duration(cls, value: str) -> str:
        from features.tables import parse_duration_days

        try:
            days = parse_duration_days(value)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("duration: ")) from None
        if days > MAX_DURATION_DAYS:
            raise ValueError(
                f"{value!r} is {days:,} days; at most {MAX_DURATION_DAYS:,} (10 years)"
            )
        return value

    @field_validator("core_role")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the core role needs a name (the role column's value)")
        return value

    def to_label_config(self) -> LabelConfig:
        from features.tables import parse_duration_days

        return LabelConfig(
            horizon_days=parse_duration_days(self.horizon),
            readiness_horizon_days=parse_duration_days(self.readiness_horizon),
            active_within_days=parse_duration_days(self.active_within),
            core_role=self.core_role,
        )


class FeaturesSection(_Section):
    """The community's activity vocabulary: which types are counted apart, which organize."""

    activity_types: tuple[Name, ...] | None = None
    organizing_types: tuple[Name, ...] = _FEATURES.organizing_types
    organizing_roles: tuple[Name, ...] = _FEATURES.organizing_roles

    def overrides(self) -> dict[str, Any]:
        """The settings as ``FeatureConfig`` keywords (lists, for flow parameters)."""
        return {
            "activity_types": None if self.activity_types is None else list(self.activity_types),
            "organizing_types": list(self.organizing_types),
            "organizing_roles": list(self.organizing_roles),
        }

    def to_feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.overrides())


class TrainingSection(_Section):
    """How training judges models: outreach capacity (share of eligible members), the gate."""

    capacity: Annotated[float, BeforeValidator(_no_bool), Field(gt=0.0, le=1.0)] = _TRAINING[
        "capacity_share"
    ]
    chapter_top: Annotated[int, BeforeValidator(_no_bool), Field(ge=1)] = _TRAINING["chapter_top"]
    tolerance: Annotated[
        float, BeforeValidator(_no_bool), Field(ge=0.0, le=1.0, allow_inf_nan=False)
    ] = _TRAINING[
        "promotion_tolerance"
    ]


class SegmentsSection(_Section):
    """How scores become segments (ready-now slots per chapter, thresholds) and the share of
    flagged members held back each cycle as the control group."""

    capacity: Annotated[int, BeforeValidator(_no_bool), Field(ge=0)] = _SEGMENTS.chapter_capacity
    at_risk: Share = _SEGMENTS.at_risk
    ready_min: Share = _SEGMENTS.ready_min
    nurture_min: Share = _SEGMENTS.nurture_min
    holdout_share: Annotated[float, BeforeValidator(_no_bool), Field(ge=0.0, lt=1.0)] = (
        DEFAULT_HOLDOUT_SHARE
    )
    declined_pause_days: Annotated[int, BeforeValidator(_no_bool), Field(ge=0)] = (
        _SEGMENTS.declined_pause_days
    )

    @model_validator(mode="after")
    def _ordered(self) -> SegmentsSection:
        if self.nurture_min > self.ready_min:
            raise ValueError(
                f"nurture_min ({self.nurture_min:g}) is above ready_min ({self.ready_min:g}): "
                "nurture is the step before ready-now, so its minimum score must be lower"
            )
        return self


class PushSection(_Section):
    """Where scores go and under which names (tokens stay in their environment variables)."""

    to: Literal["csv", "hubspot", "salesforce", "webhook", "none"] = "csv"
    crm_url: str | None = None
    omit_fields: tuple[CrmField, ...] = ()
    field_names: dict[CrmField, Annotated[str, Field(min_length=1, pattern=r"\S")]] = Field(
        default_factory=dict
    )
    min_delivered_share: Share = DEFAULT_MIN_DELIVERED_SHARE


class ScheduleSection(_Section):
    """When ``corecast serve`` runs the weekly and monthly jobs."""

    weekly: str = DEFAULT_WEEKLY_CRON
    monthly: str = DEFAULT_MONTHLY_CRON
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("weekly", "monthly")
    @classmethod
    def _cron(cls, value: str) -> str:
        from pipelines.deploy import check_cron

        return _checked(check_cron, value, "cron")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from pipelines.deploy import check_timezone

        return _checked(check_timezone, value, "timezone")


class Project(_Section):
    """The whole project file; every section is optional."""

    data: DataSection = DataSection()
    labels: LabelsSection = LabelsSection()
    features: FeaturesSection = FeaturesSection()
    training: TrainingSection = TrainingSection()
    segments: SegmentsSection = SegmentsSection()
    push: PushSection = PushSection()
    schedule: ScheduleSection = ScheduleSection()


SECTIONS: dict[str, type[_Section]] = {
    name: info.annotation for name, info in Project.model_fields.items()
}


@dataclass(frozen=True)
class Effective:
    """The configuration in force and where each value came from.

    Attributes:
        project: The validated values.
        sources: ``"section.key"`` -> ``default``, ``file``, ``environment`` or ``option``.
        path: The project file read, if any.
    """

    project: Project
    sources: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "default")


def find_project_file(explicit: str | os.PathLike | None = None) -> Path | None:
    """The project file to read: ``explicit``, ``$CORECAST_CONFIG``, ``./corecast.toml`` or the
    home's ``corecast.toml``; ``None`` when there is none.

    Raises:
        ConfigError: A file named explicitly (option or variable) does not exist.
    """
    named = explicit or os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named).expanduser()
        where = "--config" if explicit else CONFIG_ENV
        if path.is_dir():
            raise ConfigError(f"{where}: {path} is a folder; name the project file (corecast.toml)")
        if not path.is_file():
            raise ConfigError(f"{where}: the project file {path} does not exist")
        return path
    for candidate in (Path.cwd() / FILE_NAME, corecast_home(create=False) / FILE_NAME):
        if candidate.is_file():
            return candidate
    return None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML, UTF-8 text ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None


#: Keys whose value is a path: relative ones are read from the project file's folder.
_PATH_KEYS = (("data", "source"), ("data", "out"), ("data", "quarantine_dir"))


def _anchored(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The file's values with relative paths made relative to ``folder`` (URLs stay)."""
    for section, key in _PATH_KEYS:
        value = values.get(section, {}).get(key) if isinstance(values.get(section), dict) else None
        if isinstance(value, str) and value and "://" not in value:
            path = Path(value).expanduser()
            if not path.is_absolute():
                values[section][key] = str((folder / path).resolve())
    return values


def _container(annotation: Any) -> type | None:
    """``tuple`` or ``dict`` when a key holds a list or a table (possibly optional)."""
    for kind in (annotation, *get_args(annotation)):
        origin = get_origin(kind) or kind
        if origin in (tuple, dict):
            return origin
    return None


def _from_text(model: type[_Section], key: str, value: str) -> Any:
    """A variable's text as the key expects it: lists comma-separated (``a,b``), tables as
    ``name=value`` pairs (``segment=stage,reasons=why``), anything else as it is."""
    kind = _container(model.model_fields[key].annotation)
    items = [v.strip() for v in value.split(",") if v.strip()]
    if kind is tuple:
        return tuple(items)
    if kind is dict:
        pairs = [item.partition("=") for item in items]
        return {name.strip(): text.strip() for name, _, text in pairs} if all(
            sep for _, sep, _ in pairs
        ) else value
    return value


def _from_environment() -> dict[str, dict[str, str]]:
    """``CORECAST_<SECTION>_<KEY>`` values, by section and key (known sections only)."""
    found: dict[str, dict[str, str]] = {}
    for section, model in SECTIONS.items():
        for key in model.model_fields:
            value = os.environ.get(f"{_ENV_PREFIX}{section.upper()}_{key.upper()}")
            if value is None:
                continue
            found.setdefault(section, {})[key] = _from_text(model, key, value)
    return found


#: Command-line options whose name is not ``--<key>``.
_OPTION_NAMES = {"data.source": "--data", "training.capacity": "--capacity-share"}


def _place(key: str, sources: Mapping[str, str], path: Path | None) -> str:
    """Where a value came from, as a user would look for it."""
    source = sources.get(key)
    if source == "option":
        return _OPTION_NAMES.get(key, "--" + key.split(".")[-1].replace("_", "-"))
    if source == "environment":
        return _ENV_PREFIX + key.replace(".", "_").upper()
    return f"{path}: {key}" if path else key


def _plain(kind: str, message: str, depth: int) -> str:
    """A validation message in the words of the file, not of the library."""
    if kind in ("model_type", "dict_type") and depth == 1:
        return "must be a table (a [section] of keys)"
    if kind in ("tuple_type", "list_type"):
        return "must be a list, e.g. [\"reasons\"]"
    return message.removeprefix("Value error, ")


def _error_text(exc: ValidationError, sources: Mapping[str, str], path: Path | None) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            section = str(error["loc"][0])
            known = SECTIONS.get(section)
            allowed = sorted(known.model_fields) if known and len(error["loc"]) > 1 else sorted(
                SECTIONS
            )
            message = f"unknown key; allowed: {', '.join(allowed)}"
        message = _plain(error["type"], message, len(error["loc"]))
        if error["type"] != "extra_forbidden" and not isinstance(error.get("input", {}), dict):
            message += f" (got {error['input']!r})"
        lines.append(f"{_place(key, sources, path)}: {message}")
    return "\n".join(lines)


def _merge(layers: list[tuple[str, Mapping[str, Mapping[str, Any]]]]) -> tuple[dict, dict]:
    """Merge ``(source, {section: {key: value}})`` layers, later ones winning."""
    merged: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for source, layer in layers:
        for section, values in layer.items():
            if not isinstance(values, Mapping):
                merged[section] = values  # validation names it
                continue
            for key, value in values.items():
                if value is None:
                    continue
                merged.setdefault(section, {})[key] = value
                sources[f"{section}.{key}"] = source
    return merged, sources


def load_effective(
    explicit: str | os.PathLike | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Effective:
    """The configuration in force: defaults < project file < environment < ``options``.

    Args:
        explicit: The ``--config`` option (``None``: look for a file, see the module docstring).
        options: Command-line values by section and key (``None`` values are not given).

    Raises:
        ConfigError: The file or a value is invalid; the message names the file (or variable
            or option) and the key, with the allowed values.
    """
    path = find_project_file(explicit)
    layers = [("file", _anchored(_read_file(path), path.parent))] if path else []
    layers += [("environment", _from_environment()), ("option", options or {})]
    merged, sources = _merge(layers)
    try:
        project = Project.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_error_text(exc, sources, path)) from None
    return Effective(project=project, sources=sources, path=path)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def starter_file(project: Project, notes: Mapping[str, str]) -> str:
    """A commented ``corecast.toml`` with every key of ``project``; ``notes["section.key"]``
    explains a proposed value, and keys left at ``None`` are written commented out."""
    lines = [
        "# corecast project file: one configuration for every command and scheduled run.",
        "# Command-line options override it for one run; CORECAST_<SECTION>_<KEY> variables",
        "# override it too. Secrets never go here: tokens stay in their environment variables.",
    ]
    for section, model in SECTIONS.items():
        about = (model.__doc__ or "").strip().splitlines()[0].replace("``", "")
        lines += ["", f"[{section}]", f"# {about}"]
        values = getattr(project, section)
        for key in model.model_fields:
            value = getattr(values, key)
            note = notes.get(f"{section}.{key}")
            if note:
                lines.append("# " + " ".join(str(note).split()))  # one comment line
            if value is None:
                lines.append(f"# {key} = ")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _window(days: int) -> str:
    return f"{max(int(days), 7)}d"


def propose_labels(tables) -> tuple[LabelsSection, dict[str, str]]:
    """A core role and label windows that fit a community's tables, with the reason of each.

    The core role is the default one when the roles table has it, else the role with the most
    spells. A label window needs
    history after the first snapshots: with less than a year of activity the windows shrink to a
    sixth (disengagement) and a third (readiness) of it, so that training has labelled
    snapshots to learn from.
    """
    notes: dict[str, str] = {}
    values: dict[str, str] = {}
    roles = tables.roles
    if roles is not None and len(roles):
        counts = roles["role"].astype(str).value_counts()
        chosen = _LABELS.core_role if _LABELS.core_role in counts.index else str(counts.index[0])
        values["core_role"] = chosen
        why = "the default role, found" if chosen == _LABELS.core_role else "the most frequent role"
        notes["labels.core_role"] = (
            f"{why} in the roles table ({int(counts[chosen])} spells; roles seen: "
            f"{', '.join(map(str, counts.index[:5]))})"
        )
    else:
        what = "no roles table" if roles is None else "the roles table is empty"
        notes["labels.core_role"] = f"{what}: readiness will be ranked by a rule"
    span = int((tables.last_observed - tables.first_observed).days)
    if span < 365:
        values["horizon"] = values["active_within"] = _window(span // 6)
        values["readiness_horizon"] = _window(span // 3)
        notes["labels.horizon"] = (
            f"{span} days of history: windows shortened so that training finds labelled "
            "snapshots; lengthen them as the history grows"
        )
    else:
        notes["labels.horizon"] = f"{span} days of history: the default windows fit"
    return LabelsSection(**values), notes


#: Query keys of a URL that hold a credential.
_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|key|signature|sig$|auth", re.IGNORECASE)


def check_crm_url(crm_url: str | None) -> str | None:
    """Refuse a CRM URL carrying a credential: Prefect would store it with the parameters.

    Raises:
        ConfigError: The URL has a password (``user:password@``) or a secret query value.
    """
    from urllib.parse import parse_qsl, urlsplit

    if not crm_url:
        return crm_url
    parts = urlsplit(crm_url)
    secret_keys = [k for k, _ in parse_qsl(parts.query) if _SECRET_QUERY_KEY.search(k)]
    if parts.password is not None or secret_keys:
        where = "a password (user:password@)" if parts.password is not None else (
            f"a secret query value ({', '.join(secret_keys)})"
        )
        raise ConfigError(
            f"the CRM URL (--crm-url, push.crm_url or a --*-url option) carries {where}, which "
            "would be stored with the run's parameters and the delivery ledger; give "
            "credentials through the environment instead "
            "(CORECAST_HUBSPOT_TOKEN, CORECAST_SALESFORCE_TOKEN, CORECAST_WEBHOOK_SECRET, or the "
            "whole webhook URL in CORECAST_WEBHOOK_URL)"
        )
    return crm_url


def weekly_parameters(project: Project) -> dict[str, Any]:
    """The parameters of the weekly job (and the monthly job's weekly part) from a project:
    ``data``, ``out``, the groups ``segments``, ``delivery`` and ``loading``
    (:mod:`pipelines.parameters`) and ``labels_fingerprint``.

    ``data`` is the source as written (the caller moves a literal password out of it); a CRM URL
    with credentials is refused.
    """
    from pipelines.parameters import DeliveryParameters, LoadingParameters, SegmentParameters

    data, push, seg = project.data, project.push, project.segments
    return {
        "data": data.source,
        "out": Path(data.out).expanduser().resolve() if data.out else None,
        "segments": SegmentParameters(
            chapter_capacity=seg.capacity, at_risk=seg.at_risk, ready_min=seg.ready_min,
            nurture_min=seg.nurture_min, holdout_share=seg.holdout_share,
            declined_pause_days=seg.declined_pause_days,
        ),
        "delivery": DeliveryParameters(
            to=push.to, crm_url=check_crm_url(push.crm_url),
            omit_fields=list(push.omit_fields) or None,
            field_names=dict(push.field_names) or None,
            min_delivered_share=push.min_delivered_share,
        ),
        "loading": LoadingParameters(
            on_invalid=data.on_invalid, max_invalid_share=data.max_invalid_share,
            quarantine_dir=(
                Path(data.quarantine_dir).expanduser().resolve() if data.quarantine_dir else None
            ),
        ),
        "labels_fingerprint": project.labels.to_label_config().fingerprint(),
    }


def monthly_parameters(project: Project) -> dict[str, Any]:
    """The monthly job's own parameters from a project: the groups ``labels`` and ``training``."""
    from pipelines.parameters import LabelParameters, TrainingParameters

    labels = project.labels.to_label_config()
    return {
        "labels": LabelParameters(
            core_role=labels.core_role, horizon_days=labels.horizon_days,
            readiness_horizon_days=labels.readiness_horizon_days,
            active_within_days=labels.active_within_days,
        ),
        "training": TrainingParameters(
            capacity_share=project.training.capacity, chapter_top=project.training.chapter_top,
            tolerance=project.training.tolerance,
            feature_overrides=project.features.overrides(),
        ),
    }


def shown(key: str, value: Any) -> str:
    """A value as ``corecast config show`` prints it: secrets of URLs masked, lists joined."""
    from features.contract import describe_source

    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if key == "data.source":
        return describe_source(str(value))
    if key == "push.crm_url":
        return _masked_url(str(value))
    return str(value)


def _masked_url(url: str) -> str:
    """An HTTP URL with its password and secret query values as ``***``."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = urlencode(
        [(k, "***" if _SECRET_QUERY_KEY.search(k) else v) for k, v in parse_qsl(parts.query)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
