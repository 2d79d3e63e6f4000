"""Federation-size benchmark steps: where the memory of a large community goes.

Run by :mod:`benchmarks.run` like the steps of :mod:`benchmarks.pipeline` (each in its own
interpreter)::

    python -m benchmarks.run --size federation --steps memory

``memory`` loads the tables and reports, in MB, what each table holds in memory (deep: text
buffers included), what the integer encoding that features and labels share adds, the resident
memory after loading (what stays for the whole job) next to the peak of loading (what reading and
checking add on top, for a moment), and what a training frame of ``rows`` rows would hold with
float32 features.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

from features.contract import TABLE_NAMES

__all__ = ["STEPS", "main", "table_memory_mb", "array_memory_mb", "frame_memory_mb"]

_MB = 2.0**20


def table_memory_mb(tables) -> dict[str, float]:
    """Deep memory of each table of ``tables`` in MB (``None`` tables are left out)."""
    out = {}
    for name in TABLE_NAMES:
        frame = getattr(tables, name)
        if frame is not None:
            out[name] = float(frame.memory_usage(index=True, deep=True).sum()) / _MB
    return out


def array_memory_mb(obj) -> float:
    """MB of the numpy arrays held by a dataclass-like object (its attributes, one level)."""
    total = 0
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
    return total / _MB


def frame_memory_mb(rows: int, features: int) -> float:
    """MB of a training frame: float32 features, int64 label, datetime64 as_of, text member_id.

    The member id is counted at 8 bytes of text plus an 8-byte offset per row (an estimate:
    text length varies).
    """
    return rows * (4 * features + 8 + 8 + 16) / _MB


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def step_memory(size: str, rows: int = 8_000_000, features: int = 129) -> dict:
    """Load the tables of ``size`` and break their memory down (see the module docstring)."""
    from benchmarks.pipeline import data_dir
    from features.contract import load_tables
    from features.encoding import encode_tables

    t0 = time.perf_counter()
    tables = load_tables(data_dir(size))
    load_s = time.perf_counter() - t0
    peak_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    after_load = _rss_now_mb()
    by_table = table_memory_mb(tables)
    t1 = time.perf_counter()
    enc = encode_tables(tables)
    encode_s = time.perf_counter() - t1
    return {
        "core_s": load_s + encode_s,
        "load_s": round(load_s, 1),
        "encode_s": round(encode_s, 1),
        "activities": len(tables.activities),
        **{f"{name}_mb": round(mb) for name, mb in by_table.items()},
        "encoding_mb": round(array_memory_mb(enc)),
        "rss_after_load_mb": round(after_load),
        "rss_after_encoding_mb": round(_rss_now_mb()),
        "peak_of_loading_mb": round(peak_load),
        "frame_rows": rows,
        "frame_mb": round(frame_memory_mb(rows, features)),
    }


#: Step name -> function(size) -> figures, run through :func:`main`.
STEPS = {"memory": step_memory}


def main(step: str, size: str, **kwargs) -> dict:
    """Run one step (entry point used by :func:`benchmarks.harness.run_step`)."""
    return STEPS[step](size, **kwargs)
