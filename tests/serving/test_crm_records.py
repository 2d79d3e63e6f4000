"""Predictions contract, consent filtering, payload rendering and fingerprints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError, ContractError
from serving.columns import PUSH_COLUMNS
from serving.crm.records import (
    DEFAULT_HUBSPOT_PROPERTIES,
    DEFAULT_SALESFORCE_FIELDS,
    hash_payloads,
    load_predictions,
    render_field_strings,
    resolve_mapping,
    select_consenting,
    validate_predictions,
)


def predictions(**overrides) -> pd.DataFrame:
    """Two hand-written predictions."""
    frame = pd.DataFrame({
        "member_id": ["m1", "m2"],
        "email": ["Ana@Members.test", None],
        "chapter_id": ["paris", "paris"],
        "as_of": ["2024-05-06", "2024-05-06"],
        "readiness_score": [0.81237, np.nan],
        "readiness_rank": [1, None],
        "disengagement_score": [0.1, np.nan],
        "segment": ["ready-now", "steady"],
        "reasons": ["Came to 4 events in 90 days; Hosted a workshop", None],
        "readiness_model_version": ["3", "3"],
        "disengagement_model_version": ["5", None],
        "run_id": ["r1", "r1"],
        "scored_at": ["2024-05-06T09:00:00+02:00", "2024-05-06T07:00:00Z"],
    })
    for key, value in overrides.items():
        frame[key] = value
    return frame


def test_missing_columns_are_named_with_the_file():
    frame = predictions().drop(columns=["reasons", "run_id"])
    with pytest.raises(ContractError, match=r"preds\.parquet: missing column\(s\) reasons, run_id"):
        validate_predictions(frame, source="preds.parquet")


def test_duplicate_member_ids_name_column_ids_and_rows():
    frame = pd.concat([predictions(), predictions().iloc[[0]]], ignore_index=True)
    with pytest.raises(ContractError) as info:
        validate_predictions(frame, source="p.csv")
    message = str(info.value)
    assert "p.csv" in message and "member_id" in message
    assert "'m1'" in message and "rows 1, 3" in message


def test_empty_member_id_and_out_of_range_score_are_refused():
    with pytest.raises(ContractError, match="member_id is empty in row 2"):
        validate_predictions(predictions(member_id=["m1", " "]))
    with pytest.raises(ContractError, match=r"readiness_score must be a number in \[0, 1\].*row 1"):
        validate_predictions(predictions(readiness_score=[1.5, np.nan]))
    with pytest.raises(ContractError, match="readiness_rank must be a whole number"):
        validate_predictions(predictions(readiness_rank=[1.5, None]))
    with pytest.raises(ContractError, match="as_of has values that are not dates in row 2"):
        validate_predictions(predictions(as_of=["2024-05-06", "soon"]))


def test_validation_normalises_types_and_times_to_utc():
    out = validate_predictions(predictions())
    assert list(out.columns) == PUSH_COLUMNS
    assert out["readiness_rank"].dtype == "Int64"
    assert out["scored_at"].tolist() == [pd.Timestamp("2024-05-06 07:00")] * 2
    assert out["as_of"].dt.tz is None


def test_consent_false_is_never_pushed_and_empty_means_consent_as_in_the_contract():
    frame = validate_predictions(
        pd.concat([predictions(), predictions(member_id=["m3", "m4"])], ignore_index=True).assign(
            consent=["true", "No", None, "1"]
        )
    )
    kept, refused = select_consenting(frame)
    assert kept["member_id"].tolist() == ["m1", "m3", "m4"]
    assert refused == 1


def test_consent_column_with_garbage_is_a_contract_error():
    with pytest.raises(ContractError, match="consent must be true/false.*row 2"):
        validate_predictions(predictions(consent=["yes", "maybe"]))


def test_render_field_strings_by_hand():
    out = render_field_strings(validate_predictions(predictions()))
    first = out.iloc[0].to_dict()
    assert pd.isna(first.pop("action"))  # a file written before actions: nothing to say
    assert pd.isna(first.pop("talking_point"))  # nor before talking points
    assert first == {
        "member_id": "m1",
        "readiness_score": "0.8124",
        "readiness_rank": "1",
        "disengagement_score": "0.1",
        "segment": "ready-now",
        "reasons": "Came to 4 events in 90 days; Hosted a workshop",
        "as_of": "2024-05-06T00:00:00Z",
        "scored_at": "2024-05-06T07:00:00Z",
        "model_versions": "readiness=3; disengagement=5",
        # a file written before the method columns: its scores came from validated models
        "readiness_method": "model",
        "readiness_validated": "true",
        "disengagement_method": "model",
        "disengagement_validated": "true",
    }
    second = out.iloc[1]
    assert second[["readiness_score", "readiness_rank", "reasons"]].isna().all()
    assert second["model_versions"] == "readiness=3; disengagement=none"
    assert second[["disengagement_method", "disengagement_validated"]].isna().all()


def test_the_action_is_checked_and_pushed_as_corecast_action():
    from serving.crm.records import DEFAULT_HUBSPOT_PROPERTIES

    out = render_field_strings(validate_predictions(predictions(action=["contact", "hold"])))
    assert out["action"].tolist() == ["contact", "hold"]
    assert DEFAULT_HUBSPOT_PROPERTIES["action"] == "corecast_action"
    with pytest.raises(ContractError, match="action must be one of contact, hold, none.*row 2"):
        validate_predictions(predictions(action=["none", "call"]))


def test_the_talking_point_is_pushed_as_corecast_talking_point():
    point = "They have been part of the Paris chapter for 14 months."
    out = render_field_strings(validate_predictions(predictions(talking_point=[point, ""])))
    assert out["talking_point"].tolist() == [point, ""]
    assert DEFAULT_HUBSPOT_PROPERTIES["talking_point"] == "corecast_talking_point"
    assert DEFAULT_SALESFORCE_FIELDS["talking_point"] == "Corecast_Talking_Point__c"
    from serving.columns import OMITTABLE_FIELDS

    assert "talking_point" in OMITTABLE_FIELDS


def test_method_fields_are_validated_rendered_and_mapped_for_every_sink():
    frame = predictions(
        readiness_method=["rule:activity_365d", "rule:activity_365d"],
        readiness_validated=["False", "false"],
        disengagement_method=["model", ""],
        disengagement_validated=[True, None],
    )
    out = validate_predictions(frame)
    assert list(out.columns) == PUSH_COLUMNS
    assert out["readiness_validated"].tolist() == [False, False]
    fields = render_field_strings(out)
    assert fields["readiness_method"].tolist() == ["rule:activity_365d"] * 2
    assert fields["readiness_validated"].tolist() == ["false", "false"]
    assert fields.loc[0, "disengagement_method"] == "model"
    assert fields.loc[0, "disengagement_validated"] == "true"
    assert fields.loc[1, ["disengagement_method", "disengagement_validated"]].isna().all()
    for target in ("readiness", "disengagement"):
        for kind in ("method", "validated"):
            name = f"{target}_{kind}"
            assert DEFAULT_HUBSPOT_PROPERTIES[name] == f"corecast_{name}"
            assert DEFAULT_SALESFORCE_FIELDS[name] == (
                f"Corecast_{target.capitalize()}_{kind.capitalize()}__c"
            )
    with pytest.raises(ContractError, match="readiness_validated must be true/false.*row 2"):
        validate_predictions(predictions(readiness_validated=[True, "perhaps"]))


def test_push_columns_follow_the_scorer_columns():
    from serving.columns import NOT_PUSHED_COLUMNS
    from serving.score import PREDICTION_COLUMNS as SCORED

    assert PUSH_COLUMNS == [c for c in SCORED if c not in NOT_PUSHED_COLUMNS]


def test_hash_changes_with_values_and_names_only():
    rendered = render_field_strings(validate_predictions(predictions()))
    base = hash_payloads(rendered)
    assert base.str.fullmatch("[0-9a-f]{16}").all()
    assert base.iloc[0] != base.iloc[1]
    assert hash_payloads(rendered.copy()).tolist() == base.tolist()
    changed = rendered.copy()
    changed.loc[1, "segment"] = "at-risk"
    again = hash_payloads(changed)
    assert again.iloc[0] == base.iloc[0] and again.iloc[1] != base.iloc[1]
    renamed = hash_payloads(rendered.rename(columns={"segment": "corecast_segment"}))
    assert (renamed != base).all()


def test_tiny_score_noise_below_four_decimals_is_not_a_change():
    a = render_field_strings(validate_predictions(predictions(readiness_score=[0.81237, 0.2])))
    b = render_field_strings(validate_predictions(predictions(readiness_score=[0.81241, 0.2])))
    assert hash_payloads(a).tolist() == hash_payloads(b).tolist()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_load_predictions_round_trip(tmp_path, suffix):
    frame = validate_predictions(predictions())
    path = tmp_path / f"predictions{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    loaded = load_predictions(path)
    assert render_field_strings(loaded).equals(render_field_strings(frame))


def test_load_predictions_missing_file_and_bad_suffix(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_predictions(tmp_path / "nope.parquet")
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(ConfigError, match="unsupported predictions format"):
        load_predictions(tmp_path / "p.json")


def test_default_mappings():
    assert DEFAULT_HUBSPOT_PROPERTIES["readiness_score"] == "corecast_readiness_score"
    assert DEFAULT_HUBSPOT_PROPERTIES["model_versions"] == "corecast_model_versions"
    assert DEFAULT_SALESFORCE_FIELDS["as_of"] == "Corecast_As_Of__c"


def test_resolve_mapping_overrides_drops_and_refuses():
    mapping = resolve_mapping(
        DEFAULT_HUBSPOT_PROPERTIES, {"segment": "cc_segment", "reasons": None}, r"[a-z_]+", "p"
    )
    assert mapping["segment"] == "cc_segment" and "reasons" not in mapping
    with pytest.raises(ConfigError, match="unknown field 'score'"):
        resolve_mapping(DEFAULT_HUBSPOT_PROPERTIES, {"score": "x"}, r"[a-z_]+", "p")
    with pytest.raises(ConfigError, match="several fields map to corecast_segment"):
        resolve_mapping(
            DEFAULT_HUBSPOT_PROPERTIES, {"reasons": "corecast_segment"}, r"[a-z_]+", "p"
        )
    with pytest.raises(ConfigError, match="invalid name"):
        resolve_mapping(DEFAULT_HUBSPOT_PROPERTIES, {"segment": "Bad-Name"}, r"[a-z_]+", "p")
