"""Cron expressions are checked by Prefect's validator on the releases it is known on, and by
corecast's own field check elsewhere; both accept and refuse the same expressions."""

from __future__ import annotations

import sys

import pytest
from packaging.version import Version

import features.versions as versions
import pipelines.deploy as deploy
from features.errors import ConfigError

VALID = ["0 6 * * 1", "*/15 8-18 * * mon-fri", "0 5 1 * *", "0 0 1 jan-mar sun",
         "0,30 */2 1-15/3 * 0-7", "30 7 * * 2"]
INVALID = ["61 6 * * 1", "0 6 * * funday", "H 6 * * 1", "0 5 32 * *", "0 24 * * *",
           "0 6 * 13 *", "0 6 * * 8", "* * * * R", "0 6 * * 1/0"]


@pytest.fixture(params=["prefect", "fallback:version", "fallback:import"])
def validator(request, monkeypatch):
    """Which path check_cron takes: Prefect's validator, or the field check because the
    installed Prefect is outside the known range or its private module is gone."""
    if request.param == "fallback:version":
        real = versions.installed_version
        monkeypatch.setattr(
            versions, "installed_version",
            lambda name: Version("4.0.0") if name == "prefect" else real(name),
        )
    elif request.param == "fallback:import":
        monkeypatch.setitem(sys.modules, "prefect._internal.schemas.validators", None)
    expected = None if request.param.startswith("fallback") else "validate_cron_string"
    found = deploy._prefect_cron_validator()
    assert (found and found.__name__) == expected
    return request.param


@pytest.mark.parametrize("cron", VALID)
def test_valid_expressions_pass_either_way(validator, cron):
    assert deploy.check_cron(f"  {cron} ") == cron


@pytest.mark.parametrize("cron", INVALID)
def test_invalid_expressions_are_refused_either_way(validator, cron):
    with pytest.raises(ConfigError, match="is not a valid cron expression"):
        deploy.check_cron(cron, "--weekly")


def test_the_field_check_names_the_field_and_the_part():
    with pytest.raises(ValueError, match="minute: 61 is outside 0-59"):
        deploy.check_cron_fields("61 6 * * 1")
    with pytest.raises(ValueError, match="day-of-week: 'funday' is not a number from 0 to 7"):
        deploy.check_cron_fields("0 6 * * funday")
    with pytest.raises(ValueError, match="the range '5-2' runs backwards"):
        deploy.check_cron_fields("5-2 * * * *")


def test_the_installed_prefect_is_within_the_known_good_range():
    assert versions.known_good("prefect", deploy.PREFECT_CRON_KNOWN_GOOD)
