"""Schedules and deployments of the weekly and monthly flows, and the local servers they need.

- :func:`check_cron` / :func:`check_timezone`: validate a schedule before anything starts.
- :func:`build_deployments`: the two deployments (weekly, monthly) with their cron schedules.
- :func:`local_prefect_server`: a Prefect server on 127.0.0.1 for ``corecast serve`` when no
  ``PREFECT_API_URL`` is set (schedules need a server that runs the scheduler; the temporary
  server Prefect starts for a single flow run does not).
- :func:`mlflow_ui_command`: the ``mlflow server`` command line of ``corecast ui``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from features.errors import ConfigError
from features.settings import TELEMETRY_OFF

__all__ = [
    "stop_process",
    "WEEKLY_DEPLOYMENT",
    "MONTHLY_DEPLOYMENT",
    "DEFAULT_WEEKLY_CRON",
    "DEFAULT_MONTHLY_CRON",
    "DEFAULT_TIMEZONE",
    "check_cron",
    "check_cron_fields",
    "PREFECT_CRON_KNOWN_GOOD",
    "check_timezone",
    "check_port_free",
    "build_deployments",
    "pause_deployments",
    "stop_on_sigterm",
    "wait_for_http",
    "local_prefect_server",
    "mlflow_ui_command",
    "mlflow_ui_environment",
]

WEEKLY_DEPLOYMENT = "weekly"
MONTHLY_DEPLOYMENT = "monthly"
#: Every Monday at 06:00.
DEFAULT_WEEKLY_CRON = "0 6 * * 1"
#: The first day of every month at 05:00 (before the weekly run of that day, if any).
DEFAULT_MONTHLY_CRON = "0 5 1 * *"
DEFAULT_TIMEZONE = "UTC"


#: Prefect releases (lowest, highest minor version, both included) whose private
#: ``prefect._internal.schemas.validators.validate_cron_string`` :func:`check_cron` was checked
#: on. Outside the range, or when it cannot be imported, :func:`check_cron_fields` validates
#: instead. Widen it once ``tests/pipelines/test_deploy_cron.py`` passes on the new release
#: (see :mod:`features.versions`).
PREFECT_CRON_KNOWN_GOOD = ("3.4", "3.9")

_CRON_EXAMPLE = "e.g. '0 6 * * 1' (minute hour day-of-month month day-of-week: Mondays at 06:00)"


def check_cron(expression: str, option: str = "cron") -> str:
    """Validate a five-field cron expression.

    Prefect's own validator decides when this Prefect is within
    :data:`PREFECT_CRON_KNOWN_GOOD`; otherwise :func:`check_cron_fields` does.

    Raises:
        ConfigError: With the expression, what is wrong and an example.
    """
    text = " ".join(str(expression).split())
    fields = text.split(" ") if text else []
    if len(fields) != 5:
        raise ConfigError(
            f"{option}: {expression!r} is not a cron expression: expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(fields)}; {_CRON_EXAMPLE}"
        )
    try:
        (_prefect_cron_validator() or check_cron_fields)(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {expression!r} is not a valid cron expression ({exc}); "
                          f"{_CRON_EXAMPLE}") from None
    return text


def _prefect_cron_validator():
    """Prefect's private cron validator, or ``None`` outside the releases it is known on."""
    from features.versions import known_good

    if not known_good("prefect", PREFECT_CRON_KNOWN_GOOD):
        return None
    try:
        from prefect._internal.schemas.validators import validate_cron_string
    except ImportError:
        return None
    return validate_cron_string


#: The five cron fields: name, lowest and highest value, names allowed for values.
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                      "nov", "dec")),
    ("day-of-week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def check_cron_fields(text: str) -> str:
    """Validate five space-separated cron fields without Prefect (the standard syntax).

    Each field is a comma-separated list of ``*``, a value or a range ``a-b``, each optionally
    stepped (``/n``); months and week days may be named (``jan``, ``mon-fri``; 0 and 7 are
    Sunday). Random and hashed expressions (``R``, ``H``) are refused, as Prefect refuses them.

    Raises:
        ValueError: Naming the field and the part that is wrong.
    """
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields, got {len(fields)}")
    for value, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in value.split(","):
            _check_cron_part(part, name, low, high, names)
    return text


def _check_cron_part(part: str, name: str, low: int, high: int, names: tuple) -> None:
    """One list item of a cron field: ``*``, ``a`` or ``a-b``, with an optional ``/step``."""
    span, slash, step = part.partition("/")
    if slash and not (step.isdigit() and int(step) > 0):
        raise ValueError(f"{name}: step {step!r} in {part!r} is not a whole number above 0")
    if span == "*":
        return
    ends = span.split("-")
    if len(ends) > 2 or not all(ends):
        raise ValueError(f"{name}: {part!r} is not a value or a range")
    numbers = []
    for end in ends:
        if end.isdigit():
            number = int(end)
        elif end.lower() in names:
            number = names.index(end.lower()) + (1 if name == "month" else 0)
        else:
            raise ValueError(f"{name}: {end!r} is not a number from {low} to {high}")
        if not low <= number <= high:
            raise ValueError(f"{name}: {number} is outside {low}-{high}")
        numbers.append(number)
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        raise ValueError(f"{name}: the range {span!r} runs backwards")


def check_timezone(name: str, option: str = "--timezone") -> str:
    """Validate an IANA time zone name (``Europe/Paris``, ``UTC``).

    Raises:
        ConfigError: When the name is unknown (with close matches when there are some).
    """
    import difflib
    import zoneinfo

    known = zoneinfo.available_timezones()
    if name in known:
        return name
    close = difflib.get_close_matches(name, sorted(known), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"{option}: {name!r} is not an IANA time zone name (e.g. Europe/Paris, America/New_York, "
        f"UTC){hint}"
    )


def check_port_free(port: int, option: str = "--port") -> None:
    """Fail clearly when ``127.0.0.1:port`` is taken."""
    if not 0 < port < 65536:
        raise ConfigError(f"{option}: {port} is not a TCP port (1-65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: connections closing on the port (TIME_WAIT) do not make it busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise ConfigError(
                f"{option}: 127.0.0.1:{port} is already in use; stop what runs there or pick "
                f"another port with {option}"
            ) from None


def build_deployments(
    *,
    weekly_cron: str,
    monthly_cron: str,
    timezone: str,
    parameters: Mapping[str, Any],
    monthly_parameters: Mapping[str, Any] | None = None,
) -> list:
    """The weekly and monthly deployments with their cron schedules (for ``prefect.serve``).

    Args:
        weekly_cron: Cron of the weekly flow.
        monthly_cron: Cron of the monthly flow.
        timezone: IANA time zone of both schedules.
        parameters: Default parameters of both flows (``data``, ``out``, ``to``, ...).
        monthly_parameters: Extra parameters of the monthly flow only.

    Returns:
        ``[weekly, monthly]`` runner deployments; their entrypoints are module paths, so they
        run wherever corecast is installed.
    """
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    from pipelines.flows import monthly_flow, weekly_flow

    weekly_cron = check_cron(weekly_cron, "--weekly")
    monthly_cron = check_cron(monthly_cron, "--monthly")
    timezone = check_timezone(timezone)
    common = {
        "tags": ["corecast"],
        "entrypoint_type": EntrypointType.MODULE_PATH,
    }
    parameters = _as_json(parameters)
    weekly = weekly_flow.to_deployment(
        name=WEEKLY_DEPLOYMENT,
        schedules=[Cron(weekly_cron, timezone=timezone)],
        parameters=parameters,
        description="Score with the champions, write the chapter report, push to the CRM.",
        **common,
    )
    monthly = monthly_flow.to_deployment(
        name=MONTHLY_DEPLOYMENT,
        schedules=[Cron(monthly_cron, timezone=timezone)],
        parameters={**parameters, **_as_json(monthly_parameters or {})},
        description="Retrain both targets (gated promotion), then the weekly job.",
        **common,
    )
    return [weekly, monthly]


def _as_json(parameters) -> dict:
    """Flow parameters as a deployment stores them: the parameter groups as JSON objects."""
    from pydantic import BaseModel

    return {
        key: value.model_dump(mode="json")
        if isinstance(value, BaseModel) else (str(value) if isinstance(value, Path) else value)
        for key, value in dict(parameters).items()
    }


def pause_deployments(names: list[str], api: str) -> list[str]:
    """Pause the schedules of the deployments ``names`` (``flow/deployment``) on ``api``.

    Idempotent: pausing a paused deployment changes nothing. Names that do not exist (yet) are
    skipped.

    Returns:
        The names that were found and are now paused.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    paused = []
    with temporary_settings(updates={PREFECT_API_URL: api}):
        client = get_client(sync_client=True)
        for name in names:
            try:
                deployment = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            client.pause_deployment(deployment.id)
            paused.append(name)
    return paused


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` like Ctrl-C does.

    A service stopped by its supervisor (``kill``, systemd, a container runtime) then unwinds
    through the same ``finally`` blocks as one stopped from the keyboard, at any moment -
    including before a library installs its own SIGTERM handler. The previous handler is
    restored on exit (only on the main thread, where signal handlers live).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> bool:
    """Poll ``url`` until it answers 200, the process exits, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def stop_process(process: subprocess.Popen, grace: float = 15.0) -> None:
    """Terminate a child process and wait for it (kill after ``grace`` seconds)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)


@contextlib.contextmanager
def local_prefect_server(
    port: int, log_path: Path, *, startup_timeout: float = 90.0
) -> Iterator[str]:
    """Run a Prefect server on ``127.0.0.1:port`` for the duration of the block.

    When a Prefect server already answers on that port it is used as it is (and left running).
    The server keeps its database under ``PREFECT_HOME`` (the corecast home), so deployments and
    run history survive restarts.

    Yields:
        The API URL (``http://127.0.0.1:<port>/api``).

    Raises:
        ConfigError: The port is taken by something else, or the server did not start (the
            message points at its log).
    """
    api = f"http://127.0.0.1:{port}/api"
    if wait_for_http(f"{api}/health", timeout=1.0):
        yield api
        return
    check_port_free(port, "--server-port")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            # Its own session: Ctrl-C reaches the runner only, which then pauses the schedules
            # on this server before the server is stopped below.
            start_new_session=True,
        )
    try:
        if not wait_for_http(f"{api}/health", startup_timeout, process):
            raise ConfigError(
                f"the local Prefect server did not start on 127.0.0.1:{port} within "
                f"{startup_timeout:.0f} s; see {log_path}"
            )
        yield api
    finally:
        stop_process(process)


def mlflow_ui_command(tracking_uri: str, port: int, artifact_root: Path) -> list[str]:
    """The ``mlflow server`` command of ``corecast ui``: loopback only, one worker."""
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", tracking_uri,
        "--default-artifact-root", artifact_root.as_uri(),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]


def mlflow_ui_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of the MLflow UI: no job execution (starts in seconds), no telemetry."""
    env = dict(os.environ if base is None else base)
    # The server's own dependency deprecation notices are noise for someone opening the UI.
    env.setdefault(
        "PYTHONWARNINGS",
        "ignore::DeprecationWarning,ignore:starlette.middleware.wsgi is deprecated:UserWarning",
    )
    env.update(
        {
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            **TELEMETRY_OFF,
        }
    )
    return env
