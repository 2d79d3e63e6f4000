"""Reuse the hand-written feature fixtures."""

from tests.features.conftest import community  # noqa: F401
