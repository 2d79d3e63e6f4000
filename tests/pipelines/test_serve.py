"""``corecast serve`` and ``prefect.yaml`` against a real Prefect server started by the test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipelines.conftest import corecast_command, stop_process

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _deployments(api: str) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        client = get_client(sync_client=True)
        found = {}
        for deployment in client.read_deployments():
            flow = client.read_flow(deployment.flow_id)
            found[f"{flow.name}/{deployment.name}"] = deployment
        return found


def _delete_deployments(api: str) -> None:
    """Start from a server without deployments (the server is shared by the module's tests)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        client = get_client(sync_client=True)
        for deployment in client.read_deployments():
            client.delete_deployment(deployment.id)


def _wait_for(api: str, names: set[str], process: subprocess.Popen, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _deployments(api)
        if names <= set(found):
            return found
        assert process.poll() is None, "corecast serve exited early"
        time.sleep(1)
    pytest.fail(f"deployments {names} not registered within {timeout} s")


@pytest.mark.parametrize("stop_delay", [0, 5])
def test_serve_registers_both_deployments_with_cron_and_timezone(
    prefect_server, tmp_path, stop_delay
):
    _delete_deployments(prefect_server)
    data = tmp_path / "data"
    data.mkdir()
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "PREFECT_HOME": str(tmp_path / "prefect-client"),
        "CORECAST_HOME": str(tmp_path / "home"),
    }
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            corecast_command(
                "serve", "--data", str(data), "--weekly", "30 7 * * 2", "--monthly", "0 4 2 * *",
                "--timezone", "Europe/Paris", "--to", "none",
            ),
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        try:
            found = _wait_for(
                prefect_server, {"corecast-weekly/weekly", "corecast-monthly/monthly"}, process
            )
            # delay 0: the stop lands right after registration, possibly before Prefect's
            # runner took over SIGTERM; delay 5: the runner's own shutdown handles it.
            time.sleep(stop_delay)
        finally:
            stop_process(process)
    weekly, monthly = found["corecast-weekly/weekly"], found["corecast-monthly/monthly"]
    # Active while served (so "paused" below is the stop's doing).
    assert not weekly.paused and not monthly.paused
    for deployment, cron in ((weekly, "30 7 * * 2"), (monthly, "0 4 2 * *")):
        [schedule] = deployment.schedules
        assert schedule.schedule.cron == cron
        assert schedule.schedule.timezone == "Europe/Paris"
        assert deployment.parameters["data"] == str(data)
        assert deployment.parameters["delivery"]["to"] == "none"  # groups as JSON objects
        assert deployment.parameters["out"] == str(tmp_path / "home" / "out")
        assert "corecast" in deployment.tags
    assert weekly.entrypoint == "pipelines.flows.weekly_flow"
    assert monthly.entrypoint == "pipelines.flows.monthly_flow"
    # The monthly retrain trains with the configuration's labels (here the defaults).
    assert monthly.parameters["labels"]["core_role"] == "ambassador"
    assert monthly.parameters["labels"]["horizon_days"] == 90 and "labels" not in weekly.parameters
    assert "Serving corecast-weekly/weekly (30 7 * * 2)" in log.read_text()
    # Stopped with SIGTERM: a clean exit that pauses the schedules on the server.
    assert process.returncode == 0, log.read_text()[-3000:]
    after = _deployments(prefect_server)
    assert after["corecast-weekly/weekly"].paused and after["corecast-monthly/monthly"].paused


def test_prefect_yaml_deploys_both_flows_to_a_work_pool(prefect_server, tmp_path):
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "PREFECT_HOME": str(tmp_path / "prefect-client"),
        "CORECAST_CONFIG": "/srv/corecast/corecast.toml",
        "CORECAST_HOME": "/srv/corecast",
        "CORECAST_WORKDIR": str(ROOT),
    }
    prefect = [sys.executable, "-m", "prefect"]
    subprocess.run(
        [*prefect, "work-pool", "create", "corecast", "--type", "process"],
        env=env, cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    done = subprocess.run(
        [*prefect, "--no-prompt", "deploy", "--all"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = _deployments(prefect_server)
    weekly = found["corecast-weekly-from-project/weekly"]
    monthly = found["corecast-monthly-from-project/monthly"]
    assert [s.schedule.cron for s in weekly.schedules] == ["0 6 * * 1"]
    assert [s.schedule.cron for s in monthly.schedules] == ["0 5 1 * *"]
    assert weekly.schedules[0].schedule.timezone == "UTC"
    for deployment in (weekly, monthly):
        assert deployment.work_pool_name == "corecast"
        assert deployment.parameters == {"config": "/srv/corecast/corecast.toml"}
        assert deployment.job_variables["env"]["CORECAST_HOME"] == "/srv/corecast"
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
        ]
    assert weekly.entrypoint == "pipelines/flows.py:weekly_from_project"


def test_serve_without_a_server_starts_and_stops_its_own(tmp_path):
    from tests.pipelines.conftest import free_port, wait_http

    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    env = {**os.environ, "CORECAST_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_HOME", None)
    api = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            corecast_command("serve", "--data", str(data), "--server-port", str(port)),
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        try:
            assert wait_http(f"{api}/health", 120, process), log.read_text()[-3000:]
            found = _wait_for(api, {"corecast-weekly/weekly", "corecast-monthly/monthly"}, process)
        finally:
            stop_process(process)
    assert found["corecast-weekly/weekly"].schedules[0].schedule.cron == "0 6 * * 1"
    assert found["corecast-weekly/weekly"].schedules[0].schedule.timezone == "UTC"
    assert process.returncode == 0, log.read_text()[-3000:]
    # The server it started is gone with it, and kept its database in the corecast home.
    assert not wait_http(f"{api}/health", 2)
    assert (tmp_path / "home" / "prefect" / "prefect.db").exists()
