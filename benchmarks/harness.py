"""Run benchmark steps in child processes and record wall time and peak memory.

Each step runs in a fresh interpreter (``python -m benchmarks.harness STEP JSON``) so its peak RSS
is its own; the parent reads ``ru_maxrss`` of the finished child. Figures are appended to a
Markdown file with the machine's cores and memory beside them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["StepResult", "run_step", "machine_line", "append_results"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class StepResult:
    """Outcome of one benchmark step."""

    name: str
    seconds: float
    peak_rss_mb: float
    info: dict


def run_step(
    name: str,
    module: str,
    params: dict,
    timeout: float = 7200,
    max_rss_mb: float | None = None,
    poll_s: float = 0.5,
) -> StepResult:
    """Run ``module.main(**params)`` in a child interpreter and measure it.

    The module's ``main`` returns a JSON-serialisable dict of extra figures (row counts, ...).
    The child's wall time is measured inside the child, around ``main`` only.

    Args:
        name: Step name (for messages).
        module: Importable module with a ``main(**params)``.
        params: Keyword arguments of ``main`` (JSON-serialisable).
        timeout: Seconds before the child is killed.
        max_rss_mb: Kill the child as soon as its resident memory exceeds this many MB (read
            from ``/proc`` every ``poll_s`` seconds; ``None`` = no guard), so a step that blows
            up is stopped before it exhausts a shared machine.
        poll_s: Seconds between memory readings.

    Raises:
        RuntimeError: When the child fails, exceeds ``max_rss_mb`` or ``timeout``; the message
            holds the end of its standard error.
    """
    code = (
        "import json, resource, sys, time, importlib\n"
        f"mod = importlib.import_module({module!r})\n"
        "params = json.loads(sys.argv[1])\n"
        "t0 = time.perf_counter()\n"
        "info = mod.main(**params) or {}\n"
        "secs = time.perf_counter() - t0\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print('@@RESULT@@' + json.dumps({'seconds': secs, 'rss': rss, 'info': info}))\n"
    )
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(params)],
            stdout=out,
            stderr=err,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        problem = _watch(proc, timeout, max_rss_mb, poll_s)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if problem:
        raise RuntimeError(f"benchmark step {name} stopped: {problem}\n{stderr[-4000:]}")
    if proc.returncode != 0:
        how = (
            f"killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exit status {proc.returncode}"
        )
        raise RuntimeError(f"benchmark step {name} failed ({how}):\n{stderr[-4000:]}")
    line = [x for x in stdout.splitlines() if x.startswith("@@RESULT@@")][-1]
    data = json.loads(line[len("@@RESULT@@") :])
    return StepResult(name, data["seconds"], data["rss"], data["info"])


def _rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (``None`` when ``/proc`` cannot tell)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _watch(proc: subprocess.Popen, timeout: float, max_rss_mb: float | None,
           poll_s: float) -> str | None:
    """Wait for ``proc``; kill it on timeout or too much memory and say why (else ``None``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            proc.wait(timeout=poll_s)
            return None
        except subprocess.TimeoutExpired:
            pass
        if max_rss_mb is not None:
            rss = _rss_mb(proc.pid)
            if rss is not None and rss > max_rss_mb:
                proc.kill()
                proc.wait()
                return f"resident memory {rss:,.0f} MB exceeded the {max_rss_mb:,.0f} MB guard"
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return f"still running after {timeout:,.0f} s"


def machine_line() -> str:
    """Describe the machine: cores, memory, Python, platform."""
    try:
        mem_kb = int(
            next(x for x in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in x)
            .split()[1]
        )
        mem = f"{mem_kb / 1024**2:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        mem = "unknown memory"
    return (
        f"{os.cpu_count()} cores, {mem}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
    )


def append_results(filename: str, title: str, header: list[str], rows: list[list[str]],
                   notes: list[str] | None = None) -> Path:
    """Append a dated Markdown table to ``benchmarks/results/<filename>``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / filename
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n## {title} — {stamp}", "", f"Machine: {machine_line()}", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    for note in notes or []:
        lines += ["", note]
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def timed(fn, *args, **kwargs):
    """Call ``fn`` and return (result, seconds)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
