"""The command line says what produced each score: a learned model or a ranking rule."""

from __future__ import annotations

import html

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


@pytest.fixture
def short_source(tmp_path):
    """Three members over two months, no roles table: too short for any learned model."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "members.csv").write_text(
        "member_id,joined_at,chapter_id\na,2024-01-01,paris\nb,2024-01-05,paris\n"
        "c,2024-02-01,lima\n", encoding="utf-8")
    (src / "activities.csv").write_text(
        "member_id,occurred_at,activity_type,event_id\na,2024-02-01,attend,e1\n"
        "b,2024-02-01,attend,e1\nc,2024-02-10,attend,e2\na,2024-03-01,organize,e3\n",
        encoding="utf-8")
    return str(src)


def _text(result) -> str:
    """The output with line wrapping undone."""
    return " ".join(result.output.split())


def test_short_history_trains_a_rule_and_every_output_names_it(short_source, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    rule = "rule:silence_vs_rhythm"
    trained = runner.invoke(app, ["train", "--data", short_source])
    assert trained.exit_code == 0, trained.output
    text = _text(trained)
    assert rule in text and "rule:activity_365d" in text  # readiness too, without roles
    assert "- No learned model and no validation:" in text and "no roles table" in text
    assert "percentiles within the community" in text

    listed = runner.invoke(app, ["models"])
    assert listed.exit_code == 0 and rule in _text(listed)

    out = tmp_path / "out"
    scored = runner.invoke(app, ["score", "--data", short_source, "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    predictions = pd.read_csv(out / "predictions.csv")
    assert (predictions["disengagement_method"] == rule).all()
    assert (~predictions["disengagement_validated"]).all()
    page = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    assert ("Disengagement: ranked by a rule (longest silence compared with the member's "
            "usual rhythm), not validated — scores are ranks within the community") in page

    # nobody is active two years on: the disengagement column would be empty
    later = tmp_path / "later"
    empty = runner.invoke(app, ["score", "--data", short_source, "--out", str(later),
                                "--as-of", "2026-03-01"])
    assert empty.exit_code == 1
    assert "disengagement_score would be empty" in _text(empty)
    assert not later.exists()  # nothing written


def test_train_exits_1_when_a_target_asked_for_gets_nothing(short_source):
    # --until before anyone's first activity: nobody to rank, not even by a rule
    result = runner.invoke(
        app, ["train", "--data", short_source, "--target", "readiness", "--until", "2023-06-01"]
    )
    assert result.exit_code == 1
    text = _text(result)
    assert "readiness got neither a model nor a rule (insufficient_data)" in text
    assert "no member is eligible" in text
