"""``corecast ui`` on a trained store, opened in headless Chromium: runs, metrics, champions."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.browser import (  # noqa: F401  (fixtures)
    blocked_requests,
)
from tests.pipelines.conftest import (
    FAST_TRAINING,
    corecast_command,
    free_port,
    stop_process,
    wait_http,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Metric keys as models/registry.py logs them (``@`` becomes ``_at_``).
KEY_METRICS = ("holdout.roc_auc", "holdout.pr_auc", "holdout.precision_at_k")


@pytest.fixture(scope="module")
def trained_home(community, tmp_path_factory) -> tuple[Path, dict]:
    """A corecast home whose MLflow store holds one trained, promoted version per target."""
    from models.config import TrainConfig
    from models.workflow import train_and_register

    home = tmp_path_factory.mktemp("ui-home")
    # MLflow exports the last tracking URI it was given as MLFLOW_TRACKING_URI: clear it too,
    # or this would train into the store of an earlier test.
    before = {key: os.environ.pop(key, None) for key in ("CORECAST_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["CORECAST_HOME"] = str(home)
    try:
        outcomes = train_and_register(
            community,
            train_configs={
                t: TrainConfig(target=t, **FAST_TRAINING) for t in ("readiness", "disengagement")
            },
        )
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert (home / "mlflow.db").exists()
    assert [o.status for o in outcomes] == ["promoted", "promoted"]
    return home, {o.target: o for o in outcomes}


@pytest.fixture(scope="module")
def ui_server(trained_home, tmp_path_factory):
    """``corecast ui`` on a free port; stopped (SIGTERM, like Ctrl-C) after the tests."""
    home, _ = trained_home
    port = free_port()
    env = {**os.environ, "CORECAST_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = tmp_path_factory.mktemp("ui-log") / "ui.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            corecast_command("ui", "--port", str(port)),
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_http(f"{url}/health", 120, process), log.read_text()[-3000:]
        yield url, process, log
    finally:
        stop_process(process)


def _body(page) -> str:
    """The page's text with non-breaking spaces as spaces."""
    return page.inner_text("body").replace("\xa0", " ")


def _close_assistant(page) -> None:
    """Close the assistant side panel and any announcement, so the content gets the room."""
    for button in page.get_by_role("button", name="Close", exact=True).all():
        if button.is_visible():
            button.click()
    page.keyboard.press("Escape")


def _js_number(value: float) -> str:
    """How the MLflow UI prints a metric value."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def test_runs_metrics_and_champions_are_visible(
    ui_server, trained_home, chromium_page, tmp_path
):
    url, process, log = ui_server
    _, outcomes = trained_home
    page = chromium_page

    page.goto(f"{url}/#/experiments")
    for target in outcomes:
        page.get_by_role("link", name=f"corecast-{target}").wait_for(timeout=30_000)

    for target, outcome in outcomes.items():
        href = page.get_by_role("link", name=f"corecast-{target}").get_attribute("href")
        experiment = href.rstrip("/").split("/")[-1]
        page.goto(f"{url}/#/experiments/{experiment}/runs?workflowType=machine_learning")
        run_name = outcome.result.candidate
        row = page.get_by_role("link", name=f"{target}-{run_name}-", exact=False).first
        row.wait_for(timeout=30_000)
        _close_assistant(page)
        assert "1 matching run" in _body(page)
        page.screenshot(path=str(tmp_path / f"runs-{target}.png"))

        page.goto(f"{url}/#/runs/{outcome.run_id}")
        page.get_by_text("holdout.roc_auc", exact=True).wait_for(timeout=30_000)
        _close_assistant(page)
        text = _body(page)
        for key in KEY_METRICS:
            assert f"{key}\n{_js_number(outcome.metrics[key])}" in text, key
        page.screenshot(path=str(tmp_path / f"run-{target}.png"), full_page=True)
        page.goto(f"{url}/#/experiments")

    page.goto(f"{url}/#/models")
    page.get_by_role("link", name="corecast-readiness").wait_for(timeout=30_000)
    _close_assistant(page)
    text = _body(page)
    for target in outcomes:
        assert f"corecast-{target}\nVersion 1\n@ champion\n: Version 1" in text
    page.screenshot(path=str(tmp_path / "models.png"))

    page.goto(f"{url}/#/models/corecast-disengagement")
    page.get_by_text("Version 1", exact=True).first.wait_for(timeout=30_000)
    assert "champion" in _body(page)
    page.screenshot(path=str(tmp_path / "model-disengagement.png"))
    assert blocked_requests(page) == []

    assert process.poll() is None
    stop_process(process)
    assert process.returncode == 0
    output = log.read_text()
    assert f"MLflow UI: {url}" in output and "MLflow UI stopped." in output
    assert "Traceback" not in output
