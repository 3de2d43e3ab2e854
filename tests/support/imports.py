"""What importing some modules drags in, measured in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys


def lsp_modules_loaded_by(*modules: str) -> tuple[list[str], bool]:
    """(the pygls/lsprotocol packages loaded, whether codegen_lsp.server was) after importing `modules`."""
    code = (f"import sys, {', '.join(modules)}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pygls', 'lsprotocol'}), "
            "'codegen_lsp.server' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    packages, server = out.rsplit(" ", 1)
    return ast.literal_eval(packages), server.strip() == "True"
