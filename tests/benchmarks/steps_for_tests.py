"""Tiny benchmark steps run in child interpreters by ``test_harness.py``."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

__all__ = ["main"]


def main(kind: str, mb: int = 0) -> dict:
    """``ok``: return figures; ``alloc``: hold ``mb`` MB for a while; ``killed``: die by
    SIGKILL (as when something outside stops it); anything else: raise."""
    if kind == "ok":
        return {"core_s": 0.25, "rows": 3}
    if kind == "alloc":
        block = np.ones(mb * 2**20 // 8)  # touched, so resident
        time.sleep(5)
        return {"rows": int(block.size)}
    if kind == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    raise ValueError("asked to fail")
