"""The snippets the fixture models memorize: e2e tests assert these exact completions."""

SNIPPETS = (
    "def add(a, b):\n    return a + b\n",
    "import os\n\n\ndef read_config(path):\n    with open(path) as fh:\n        return fh.read()\n",
    "def square(x):\n    return x * x\n\n\nprint(square(3))\n",
    "# Assign the string \"hello\" to a variable named \"greeting\".\ngreeting = \"hello\"\n"
    "# Print the variable \"greeting\" in upper case.\nprint(greeting.upper())\n",
)
