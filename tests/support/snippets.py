"""The snippets the fixture models memorize: e2e tests assert these exact completions."""

SNIPPETS = (
    "def add(a, b):\n    return a + b\n",
    "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        return fh.read()\n",
    "def square(x):\n    return x * x\n\n\nprint(square(3))\n",
    "# Assign the string \"hello\" to a variable named \"greeting\".\ngreeting = \"hello\"\n"
    "# Print the variable \"greeting\" in upper case.\nprint(greeting.upper())\n",
)

# Programs written one comment per step: the synthesis fixture model memorizes them, and e2e tests
# synthesize each from its comments alone (code removed) and expect the program back exactly.
MTPB_STYLE_PROGRAM = (
    "# Import libraries.\n\nimport numpy as np\n\n"
    "# Assign the list [3, 1, 2] to a variable named \"numbers\".\nnumbers = [3, 1, 2]\n\n"
    "# Sort \"numbers\" in ascending order and store the result in \"ordered\".\nordered = sorted(numbers)\n\n"
    "# Print the variable \"ordered\".\nprint(ordered)\n\n"
)
DOCSTRING_PROGRAM = (
    "def mean(values):\n"
    "    \"\"\"Return the arithmetic mean of values.\"\"\"\n"
    "    return sum(values) / len(values)\n"
)
JAVASCRIPT_PROGRAM = (
    "// Log the numbers from 1 to 3.\n"
    "for (let i = 1; i <= 3; i++) {\n"
    "  console.log(i);\n"
    "}\n"
)
# The first comment is followed by the next comment: the model writes no code for it.
EMPTY_TURN_PROGRAM = "# Nothing to do here.\n\n# Print \"done\".\nprint(\"done\")\n"
# The memorized code does not parse: synthesis must report it and insert nothing.
BROKEN_TURN_PROGRAM = "# Start a list of values.\nvalues = [1, 2,\n"

SYNTHESIS_SNIPPETS = (MTPB_STYLE_PROGRAM, DOCSTRING_PROGRAM, JAVASCRIPT_PROGRAM, EMPTY_TURN_PROGRAM,
                      BROKEN_TURN_PROGRAM)


def comments_only(program: str, marker: str = "#") -> str:
    """The program with every code line removed: what a person writes before synthesizing."""
    keep = [line for line in program.split("\n")
            if not line.strip() or line.lstrip().startswith((marker, '"""', "import "))
            or line.rstrip().endswith(":")]
    return "\n".join(keep)
