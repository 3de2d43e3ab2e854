"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from codegen_lsp.engine.remote import RemoteEngine


@pytest.fixture
def engine():
    """A RemoteEngine whose reports (what the client would be told) collect in `engine.reports`."""
    reports: list[str] = []
    engine = RemoteEngine(reports.append)
    engine.reports = reports  # type: ignore[attr-defined]
    yield engine
    engine.close()
