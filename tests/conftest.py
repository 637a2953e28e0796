"""Core's test configuration; the shared fixtures come from Ordo's pytest plugin, core.testing."""

from __future__ import annotations

import pytest

from core.plugins import discover


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to run without the example third-party plugin the tests install and enable."""
    if "inspection" not in discover():
        raise pytest.UsageError(
            "the example third-party plugin (tests/thirdparty) is not installed; "
            "run `scripts/install --test` or `.venv/bin/pip install -e tests/thirdparty`"
        )
