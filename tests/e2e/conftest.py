"""End-to-end fixtures: the real server as a subprocess over stdio (pytest-lsp), real tiny GGUFs."""

from __future__ import annotations

import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from support.lsp import SERVER, record_events


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient):
    """A started server; each test does its own initialize (model and options differ per test). Its
    `codegenLsp/status` and `codegenLsp/stats` notifications collect in `client.statuses` / `client.stats`."""
    record_events(lsp_client)
    yield
    server = getattr(lsp_client, "_server", None)
    if lsp_client.capabilities is None and server is not None and server.returncode is None:
        # A test that failed before its initialize: pytest-lsp then sends no `exit` and waits for the server
        # to end, which it never does (a failed assertion hung the whole run). End it here.
        server.kill()
    await lsp_client.shutdown_session()
