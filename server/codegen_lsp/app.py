"""The assembled language server: a `CodegenLanguageServer` with every feature's handlers registered.

Only the entry points (`serve.py`) import this module: server.py must not reach back into features/,
which import it (tests/unit/test_import_graph.py).
"""

from __future__ import annotations

from .engine.jobs import Engine
from .features import register_all
from .server import CodegenLanguageServer


def create_server(engine: Engine | None = None) -> CodegenLanguageServer:
    server = CodegenLanguageServer(engine)
    register_all(server)
    return server
