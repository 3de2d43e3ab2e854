"""`python -m codegen_lsp_devtools.training`: `train-default` where codegen-lsp is not installed."""

import sys

from .command import main

sys.exit(main())
