"""The outreach benchmark on a tiny community: the shape of its results and the recorded truth.

Whether the measurement recovers the truth is the benchmark's judgement on a large community,
not this test's.
"""

from __future__ import annotations

from benchmarks import bench_outreach as bo


def test_a_tiny_run_gives_three_figures_per_seed_with_the_truth(tmp_path):
    case = bo.run_case(members=1_500, years=1.5, seed=2, holdout=0.3, folder=tmp_path / "s")
    summary = case["summary"]
    assert summary["settings"]["holdout_share"] == 0.3
    assert summary["true_retention_uplift"] is not None and summary["calls"] > 0
    assert {"true_uplift", "p_accept", "p_disengages_untreated"} <= set(case["truth"].columns)
    intro, table, verdict = bo.report_blocks([case])
    assert "1,500 members over 1.5 years, holdout share 0.3" in intro
    lines = table.splitlines()
    assert len(lines) == 2 + 3
    assert lines[0].startswith("| seed | figure |")
    assert all(line.rstrip(" |").endswith(("yes", "NO")) for line in lines[2:])
    assert verdict.startswith("The truth lies within the measured interval in ")


def test_main_prints_without_writing(tmp_path, capsys):
    out = tmp_path / "outreach.md"
    assert bo.main(["--members", "800", "--years", "1.5", "--seeds", "1", "--no-write",
                    "--out", str(out)]) == 0
    assert "retention uplift" in capsys.readouterr().out
    assert not out.exists()
