"""Fixtures shared by the engine's tests."""

from __future__ import annotations

import pytest

from compute.engine import Limits


@pytest.fixture
def limits() -> Limits:
    """The default limits, whatever SHIPYARD_* variables the environment sets."""
    return Limits()
