"""The everyday cursors (kept with the dev tools, which benchmark on them too)."""

from codegen_lsp_devtools.bench.everyday import EVERYDAY, HARD, split

__all__ = ["EVERYDAY", "HARD", "split"]
