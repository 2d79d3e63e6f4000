"""The command line over the domain packages: exit codes, messages and files written."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app, main

runner = CliRunner()


def _write_csv(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.csv").write_text(text, encoding="utf-8")


@pytest.fixture
def small_source(tmp_path):
    src = tmp_path / "src"
    _write_csv(src, "members", "member_id,joined_at,chapter_id\na,2024-01-01,paris\n"
               "b,2024-01-05,paris\nc,2024-02-01,lima\n")
    _write_csv(src, "activities", "member_id,occurred_at,activity_type,event_id\n"
               "a,2024-02-01,attend,e1\nb,2024-02-01,attend,e1\nc,2024-02-10,attend,e2\n"
               "a,2024-03-01,organize,e3\n")
    return src


def _run_main(monkeypatch, capsys, args):
    monkeypatch.setattr("sys.argv", ["corecast", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr()


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("validate", "simulate", "features", "train", "models", "score", "push",
                    "demo"):
        assert command in result.output


def test_validate_ok(small_source):
    result = runner.invoke(app, ["validate", "--data", str(small_source)])
    assert result.exit_code == 0, result.output


def test_validate_bad_data_exits_2_with_file_column_and_rows(small_source, monkeypatch, capsys):
    _write_csv(small_source, "activities", "member_id,occurred_at,activity_type\n"
               "a,2024-02-01,attend\nzz,2024-02-02,attend\n")
    code, captured = _run_main(monkeypatch, capsys, ["validate", "--data", str(small_source)])
    assert code == 2
    assert "activities.csv" in captured.err and "member_id" in captured.err
    assert "zz" in captured.err and "Traceback" not in captured.err


def test_features_writes_one_row_per_member_known_at_as_of(small_source, tmp_path):
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["features", "--data", str(small_source), "--as-of",
                                 "2024-01-10", "--out", str(out), "--describe"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    # only a and b joined before 2024-01-10; no activity before it yet
    assert sorted(frame["member_id"]) == ["a", "b"]
    assert (frame["n_all_365d"] == 0).all()
    assert "n_all_365d\t" in result.output


def test_simulate_rejects_unknown_format_before_writing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "sim"
    code, captured = _run_main(monkeypatch, capsys,
                               ["simulate", "--out", str(out), "--format", "xml"])
    assert code == 2 and "--format" in captured.err
    assert not out.exists()


def test_simulate_then_validate(tmp_path):
    out = tmp_path / "sim"
    result = runner.invoke(app, ["simulate", "--members", "600", "--years", "1.5", "--out",
                                 str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "members.parquet").exists() and (out / "truth.parquet").exists()
    assert runner.invoke(app, ["validate", "--data", str(out)]).exit_code == 0


def test_train_rejects_bad_duration(small_source, monkeypatch, capsys):
    code, captured = _run_main(monkeypatch, capsys,
                               ["train", "--data", str(small_source), "--horizon", "soon"])
    assert code == 2 and "--horizon" in captured.err


def test_score_without_models_says_to_train(small_source, monkeypatch, capsys, tmp_path):
    code, captured = _run_main(monkeypatch, capsys, ["score", "--data", str(small_source),
                                                     "--out", str(tmp_path / "o")])
    assert code == 2 and "corecast train" in captured.err
    assert not (tmp_path / "o").exists()


def test_push_needs_predictions_unless_status(monkeypatch, capsys):
    code, captured = _run_main(monkeypatch, capsys, ["push", "--to", "csv"])
    assert code == 2 and "--predictions" in captured.err


def test_push_skips_a_rescore_with_unchanged_content_unless_every_field_counts(
    tmp_path, monkeypatch, capsys
):
    from tests.serving.test_crm_volatile import rescored, week_one

    first, second = tmp_path / "week1.parquet", tmp_path / "week2.parquet"
    week_one().to_parquet(first)
    rescored(week_one()).to_parquet(second)
    common = ["push", "--to", "csv", "--ledger", str(tmp_path / "ledger.sqlite"),
              "--csv-path", str(tmp_path / "export.csv")]

    def sent(predictions, *extra):
        code, captured = _run_main(monkeypatch, capsys, [*common, "-p", str(predictions), *extra])
        assert code in (0, None), captured.err
        return captured.out

    assert "3 sent" in sent(first)
    # A week later: new scoring time, as-of date, model versions and run, same content.
    out = sent(second)
    assert "0 changed" in out and "3 unchanged" in out
    # Every field counts: the volatile ones differ, so all three are sent again.
    assert "3 sent" in sent(second, "--volatile-field", "none")


@pytest.mark.parametrize(
    ("args", "max_rows", "snapshots"),
    [
        (["--max-frame-rows", "5000"], 5000, 24),
        (["--max-frame-rows", "0"], None, 24),
        (["--until", "2024-03-01", "--snapshots", "6"], 2_000_000, 6),
    ],
)
def test_train_passes_the_frame_settings(small_source, monkeypatch, args, max_rows, snapshots):
    seen = {}

    def fake_train_and_register(tables, targets, **kwargs):
        seen.update(kwargs, targets=targets)
        return []

    monkeypatch.setattr("models.workflow.train_and_register", fake_train_and_register)
    result = runner.invoke(app, ["train", "--data", str(small_source), "-t", "disengagement",
                                 *args])
    assert result.exit_code == 0, result.output
    assert seen["targets"] == ["disengagement"]
    assert seen["frame"].max_rows == max_rows
    assert seen["frame"].snapshots == snapshots


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 365), ("180d", 180), ("none", None), ("None", None)]
)
def test_train_sets_the_readiness_activity_window(small_source, monkeypatch, value, expected):
    seen = {}

    def fake_train_and_register(tables, targets, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr("models.workflow.train_and_register", fake_train_and_register)
    extra = [] if value is None else ["--readiness-active-within", value]
    result = runner.invoke(app, ["train", "--data", str(small_source), *extra])
    assert result.exit_code == 0, result.output
    assert seen["labels"].readiness_active_within_days == expected


def test_train_rejects_a_bad_readiness_activity_window(small_source, monkeypatch, capsys):
    code, captured = _run_main(monkeypatch, capsys, ["train", "--data", str(small_source),
                                                     "--readiness-active-within", "lately"])
    assert code == 2 and "--readiness-active-within" in captured.err


def _messy_source(small_source):
    """``small_source`` with 200 activities, one of which names a member not in the export."""
    rows = [f"{'abc'[i % 3]},2024-02-{1 + i % 28:02d},attend,e{i}" for i in range(199)]
    _write_csv(small_source, "activities", "member_id,occurred_at,activity_type,event_id\n"
               + "\n".join(rows) + "\nzz,2024-02-02,attend,e9\n")  # line 201: unknown member
    return small_source


def test_validate_quarantine_loads_the_valid_rows_and_prints_the_count(
    small_source, isolated_home
):
    source = str(_messy_source(small_source))
    strict = runner.invoke(app, ["validate", "--data", source])
    assert strict.exit_code != 0 and "zz" in str(strict.exception)
    result = runner.invoke(app, ["validate", "--data", source, "--on-invalid", "quarantine"])
    assert result.exit_code == 0, result.output
    path = isolated_home / "quarantine" / "activities.quarantine.csv"
    assert f"activities: 1 of 200 rows quarantined (0.50%): unknown_member 1 -> {path}" in (
        result.output
    )
    assert "199 activities" in result.output
    rejected = pd.read_csv(path, dtype=str)
    assert rejected[["member_id", "rule"]].values.tolist() == [["zz", "unknown_member"]]
    assert "line 201, column member_id" in rejected["detail"][0]


def test_quarantine_dir_and_share_limit_options(small_source, tmp_path, monkeypatch, capsys):
    source = str(_messy_source(small_source))
    qdir = tmp_path / "rejected"
    code, captured = _run_main(monkeypatch, capsys, [
        "validate", "--data", source, "--on-invalid", "quarantine", "--max-invalid-share", "0.001",
        "--quarantine-dir", str(qdir),
    ])
    assert code == 2 and "1 of 200 rows (0.50%)" in captured.err
    assert "--max-invalid-share 0.005" in captured.err and not qdir.exists()
    result = runner.invoke(app, ["features", "--data", source, "--on-invalid", "quarantine",
                                 "--quarantine-dir", str(qdir), "-o", str(tmp_path / "f.pq")])
    assert result.exit_code == 0, result.output
    assert (qdir / "activities.quarantine.csv").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--on-invalid", "lenient"], "--on-invalid"),
        (["--on-invalid", "quarantine", "--max-invalid-share", "1.5"], "--max-invalid-share"),
        (["--max-invalid-share", "lots"], "--max-invalid-share"),
    ],
)
def test_bad_on_invalid_options_exit_2(small_source, monkeypatch, capsys, args, needle):
    for command in ("validate", "train", "score"):
        result = runner.invoke(app, [command, "--data", str(small_source), *args])
        assert result.exit_code == 2, (command, result.output)
        assert needle in result.output
    code, captured = _run_main(monkeypatch, capsys, ["validate", "--data", str(small_source),
                                                     *args])
    assert code == 2 and needle in captured.err


def test_an_out_option_that_is_a_file_or_a_folder_is_refused_in_one_line(
    monkeypatch, capsys, small_source, tmp_path
):
    taken = tmp_path / "predictions.parquet"
    taken.write_bytes(b"not a folder")
    code, out = _run_main(monkeypatch, capsys, ["score", "--data", str(small_source),
                                                "--out", str(taken)])
    text = " ".join(out.err.split())
    assert code == 2 and "--out:" in text and "is a file" in text
    assert "Traceback" not in out.out + out.err and taken.read_bytes() == b"not a folder"
    folder = tmp_path / "features"
    folder.mkdir()
    code, out = _run_main(monkeypatch, capsys, ["features", "--data", str(small_source),
                                                "--out", str(folder)])
    assert code == 2 and "is a folder" in " ".join(out.err.split())
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(("name", "content", "what"), [
    ("empty.csv", b"", "is empty"),
    ("broken.parquet", b"PAR1 truncated", "is unreadable"),
])
def test_push_names_an_empty_or_corrupt_predictions_file(
    monkeypatch, capsys, tmp_path, name, content, what
):
    path = tmp_path / name
    path.write_bytes(content)
    sink = tmp_path / "crm.csv"
    code, out = _run_main(monkeypatch, capsys, ["push", "--predictions", str(path), "--to",
                                                "csv", "--csv-path", str(sink)])
    text = " ".join(out.err.split())
    assert code == 2 and f"{path}: the predictions file {what}" in text
    assert "Traceback" not in out.out + out.err and not sink.exists()


def test_an_ambiguous_as_of_is_refused(monkeypatch, capsys, small_source, tmp_path):
    code, out = _run_main(monkeypatch, capsys, ["features", "--data", str(small_source),
                                                "--out", str(tmp_path / "f.parquet"),
                                                "--as-of", "01/02/2024"])
    assert code == 2 and "YYYY-MM-DD" in " ".join(out.err.split())
    assert not (tmp_path / "f.parquet").exists()


def test_features_before_anyone_joined_write_nothing_and_say_why(
    monkeypatch, capsys, small_source, tmp_path
):
    out = tmp_path / "f.parquet"
    code, said = _run_main(monkeypatch, capsys, ["features", "--data", str(small_source),
                                                 "--out", str(out), "--as-of", "1999-01-01"])
    assert code == 2 and "no member had joined before it" in " ".join(said.err.split())
    assert not out.exists()
    # Long after the last activity: written, with a warning that everyone looks silent.
    code, said = _run_main(monkeypatch, capsys, ["features", "--data", str(small_source),
                                                 "--out", str(out), "--as-of", "2090-01-01"])
    assert code == 0 and out.exists()
    assert "every member looks silent since then" in " ".join(said.err.split())


@pytest.mark.parametrize(("sent", "failed", "code", "said"), [
    (10, 0, 0, ""),
    (9, 1, 3, "partial delivery: 9 of 10"),
    (0, 10, 1, "push failed: 0 of 10"),
])
def test_push_exit_code_says_what_was_delivered(monkeypatch, tmp_path, sent, failed, code, said):
    import dataclasses

    from benchmarks.fakes.data import make_predictions
    from serving.crm import CsvConfig, CsvSink, Ledger, push_predictions

    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        real = push_predictions(make_predictions(10),
                                CsvSink(CsvConfig(path=tmp_path / "x.csv")), ledger)
    report = dataclasses.replace(real, sent=sent, failed=failed,
                                 failure_reasons={"refused": failed} if failed else {})
    monkeypatch.setattr("serving.crm.push_from_file", lambda *args, **kwargs: report)
    predictions = tmp_path / "predictions.parquet"
    predictions.write_bytes(b"")  # not read: the push is replaced
    result = runner.invoke(app, ["push", "--predictions", str(predictions), "--to", "csv"])
    assert result.exit_code == code, result.output
    assert said in " ".join(result.output.split())


def test_user_errors_exit_with_the_code_of_what_went_wrong():
    from features.errors import ConfigError, ContractError, CrmError, CrmRefused, DeliveryFailed
    from pipelines.cli import exit_code

    assert exit_code(DeliveryFailed("0 of 10 delivered")) == 1
    assert exit_code(CrmError("HTTP 503 after 5 attempts")) == 1  # the CRM stayed unreachable
    assert exit_code(CrmRefused("HubSpot: HTTP 401")) == 2  # a bad token: fix it, do not wait
    assert exit_code(ContractError("members.csv, column email")) == 2
    assert exit_code(ConfigError("--to: expected one of ...")) == 2


@pytest.mark.parametrize(("partial", "code"), [(None, 0), ("partial delivery: 9 of 10", 3)])
def test_run_exits_3_on_a_partial_delivery(monkeypatch, small_source, tmp_path, partial, code):
    push = {"kind": "csv", "dry_run": False, "new": 10, "changed": 0, "unchanged": 0, "sent": 9,
            "failed": 1, "files": [], "partial": partial}

    def fake_run_flow(flow, **parameters):
        return {"as_of": "2024-03-02", "members_scored": 10, "models": {}, "segments": {},
                "push": push, "quarantine": None}

    monkeypatch.setattr("pipelines.cli._run_flow", fake_run_flow)
    result = runner.invoke(app, ["run", "--data", str(small_source), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == code, result.output
    assert (partial or "Run finished\n") in result.output


def test_simulate_with_outreach_writes_the_calls_and_the_assignment_log(tmp_path):
    out = tmp_path / "sim"
    result = runner.invoke(app, ["simulate", "--members", "600", "--years", "1.5", "--out",
                                 str(out), "--outreach", "--holdout-share", "0.3"])
    assert result.exit_code == 0, result.output
    assert "Outreach:" in result.output and "assignment log" in result.output
    assert (out / "outreach.parquet").exists() and (out / "outreach_truth.parquet").exists()
    assert any((out / "assignments").glob("*.parquet"))
    assert runner.invoke(app, ["validate", "--data", str(out)]).exit_code == 0


def test_simulate_refuses_outreach_options_without_outreach(tmp_path):
    out = tmp_path / "sim"
    from features.errors import ConfigError
    from pipelines.cli import exit_code

    result = runner.invoke(app, ["simulate", "--members", "300", "--years", "1", "--out",
                                 str(out), "--holdout-share", "0.3"])
    assert isinstance(result.exception, ConfigError)  # the entry point prints it, exits 2
    assert exit_code(result.exception) == 2
    assert "--holdout-share applies only with --outreach" in str(result.exception)
    assert not out.exists()  # nothing written


@pytest.mark.parametrize(("args", "share", "warned"), [
    (["--capacity-share", "0.05"], 0.05, False),
    (["--capacity", "0.02"], 0.02, True),  # the former name still works, with a warning
])
def test_train_capacity_is_a_share_named_as_such(small_source, monkeypatch, args, share, warned):
    seen = {}

    def fake_train_and_register(tables, targets, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr("models.workflow.train_and_register", fake_train_and_register)
    result = runner.invoke(app, ["train", "--data", str(small_source), "-t", "disengagement",
                                 *args])
    assert result.exit_code == 0, result.output
    assert seen["train_configs"]["disengagement"].capacity_share == share
    assert ("now --capacity-share" in result.output) == warned


def test_push_takes_the_sink_url_as_run_does(monkeypatch, tmp_path):
    seen = {}

    def fake_push_from_file(path, kind, options):
        seen["url"] = options.webhook.url
        raise SystemExit(0)

    monkeypatch.setattr("serving.crm.push_from_file", fake_push_from_file)
    predictions = tmp_path / "predictions.parquet"
    predictions.write_bytes(b"")
    runner.invoke(app, ["push", "--predictions", str(predictions), "--to", "webhook",
                        "--crm-url", "http://127.0.0.1:9/hook"])
    assert seen["url"] == "http://127.0.0.1:9/hook"
