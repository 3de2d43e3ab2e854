"""What the tests know of the embedded default model's outputs, in one place: when models/ gets a new
model, these are the constants to look at again (the tests that use them say what they need)."""

from __future__ import annotations

from pathlib import Path

from support import REPO_ROOT

MODEL = sorted((REPO_ROOT / "models").glob("*.gguf"))[0]  # (shipped_model() also checks there is one)

# A cursor where the embedded model writes code (greedy: always the same), at its end (line 6,
# character 4): a `main` that has just read sys.argv. Its answer survives post-processing.
WRITES_CODE = "import os\nimport sys\n\n\ndef main():\n    args = sys.argv[1:]\n    "
WRITES_CODE_AT = (6, 4)

# Text before the cursor where the embedded model, unfiltered, loops to the token limit
# (tests/e2e/test_repetition_filter.py).
LOOPS = ["import numpy as np\n\na = np.array([",  # -1, -1, -1, …
         "assert_equal("]  # a, b, b, b, b, …


def shipped_model() -> Path:
    found = sorted((REPO_ROOT / "models").glob("*.gguf"))
    assert len(found) == 1, f"exactly one embedded model expected in models/, found {found}"
    return found[0]
