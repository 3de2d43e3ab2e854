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


def devtools_modules_loaded_by_cli(*argv: str) -> list[str]:
    """The codegen_lsp_devtools modules a fresh interpreter has loaded after `codegen-lsp ARGV` parsed its
    arguments (the command itself is not run: its function is replaced)."""
    code = ("import sys, codegen_lsp.cli as cli\n"
            "parser, _ = cli.build_parser(cli._command_of(sys.argv[1:]))\n"
            "parser.parse_args(sys.argv[1:])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'codegen_lsp_devtools'))")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True).stdout
    return ast.literal_eval(out)
