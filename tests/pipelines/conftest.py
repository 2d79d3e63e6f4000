"""Shared fixtures of the pipeline tests: one Prefect test server, one small simulated community.

``prefect_harness`` starts Prefect's test server once per session (about 10 s) and only for the
tests that request it (the ones that run flows). ``community`` is a simulated community just
large enough that both targets train (readiness needs 5 positives in its holdout: 2,000 members
over 2.5 years give 11 with seed 0, where 800-1,200 members give 2-4).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.deploy import stop_process  # noqa: F401  (used by the test modules)
from pipelines.deploy import wait_for_http as wait_http
from simulator.community import SimulationConfig, simulate_community, write_simulation

#: Quick training settings (few boosting rounds, one importance repeat, one thread).
FAST_TRAINING = {"hgb_max_iter": 30, "importance_repeats": 1, "threads": 1}
COMMUNITY = SimulationConfig(members=2000, years=2.5, seed=0)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Prefect's temporary test server and database, shared by the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def community(tmp_path_factory) -> str:
    """Folder of a simulated 2,000-member, 2.5-year community (both targets train on it)."""
    folder = tmp_path_factory.mktemp("community") / "data"
    write_simulation(simulate_community(COMMUNITY), folder)
    return str(folder)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def corecast_command(*args: str) -> list[str]:
    """The ``corecast`` command line run by this interpreter."""
    return [sys.executable, "-c", "from pipelines.cli import main; main()", *args]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory) -> Iterator[str]:
    """A real Prefect server on a free loopback port with its own home; yields the API URL."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        if not wait_http(f"{api}/health", 120, process):
            log.flush()
            pytest.fail(
                "the Prefect server did not start: "
                + Path(home / "server.log").read_text(errors="replace")[-2000:]
            )
        yield api
    finally:
        stop_process(process)
        log.close()
