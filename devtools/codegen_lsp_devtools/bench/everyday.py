"""Twelve everyday cursors, each with the code a person would expect there (what the suggestion must start
with), and four where a remote engine used to go wrong. `|` marks the cursor. Used by
tests/e2e/test_everyday_cursors.py to judge the models users get, tests/e2e/test_remote_parity.py and
`bench remote-healing` to compare the engines."""

from __future__ import annotations

EVERYDAY: list[tuple[str, str]] = [
    ("def add(a, b):\n    return |\n", "a + b"),
    ("def parse(s):\n    try:\n        return int(s)\n    except |\n", "ValueError"),
    ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n        |\n", "self.y = y"),
    ('name = "world"\npri|\n', "nt("),
    ("import os\n\n\ndef list_python_files(folder):\n    \"\"\"Return the paths of the Python files in folder.\"\"\"\n"
     "    paths = []\n    for name in sorted(os.listdir(folder)):\n        if name.endswith(\".py\"):\n"
     "            |\n    return paths\n", "paths.append(os.path.join(folder, name))"),
    ("import os\n\n\ndef file_size(path):\n    \"\"\"Return the size of the file at path in bytes.\"\"\"\n"
     "    return |\n", "os.path.getsize(path)"),
    ("def total(numbers):\n    result = 0\n    for n in |\n", "numbers"),
    ("def main():\n    print(\"hello\")\n\n\nif __name__ == \"__main__\":\n    |\n", "main()"),
    ("def read_text(path):\n    with open(path) as f:\n        return f.|\n", "read()"),
    ("def is_even(n):\n    return n % |\n", "2 == 0"),
    ("numbers = [1, 2, 3, 4]\nsquares = [x * x for x in |]\n", "numbers"),
    ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n\n"
     "    def __repr__(self):\n        return f\"Point({self.x}, {self.|\n", "y})"),
]

# Where the remote path went wrong before token healing over the API: a typed space, indentation,
# mid-identifier, `return`.
HARD: list[str] = [
    "def greet(name):\n    message = \"Hello, \" + |\n",
    "def mean(values):\n    total = sum(values)\n    |\n",
    "import math\n\n\ndef circle_area(radius):\n    return math.p|\n",
    "def clamp(x, low, high):\n    if x < low:\n        return low\n    if x > high:\n        return high\n    return |\n",
]


def split(source: str) -> tuple[str, int, int]:
    """The text without the marker, and the cursor's line and column (0-based; ASCII, so UTF-16 = chars)."""
    before, after = source.split("|", 1)
    return before + after, before.count("\n"), len(before) - (before.rfind("\n") + 1)
