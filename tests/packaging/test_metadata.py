"""What the published artifacts say about themselves: the wheel's core metadata (SPDX license, classifiers,
project URLs, dependencies) and the LICENSE file in the wheel and the sdist.

They read the sdist and wheel the `built` fixture (conftest.py) makes once for the whole packaging suite,
the ones test_wheel_install.py installs: `python -m build`, as `make dist` runs it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support import REPO_ROOT

if TYPE_CHECKING:
    from conftest import Built

pytestmark = pytest.mark.packaging

CLASSIFIERS = {
    "Development Status :: 3 - Alpha",
    "Intended Audience :: Developers",
    "Operating System :: POSIX :: Linux",
    "Programming Language :: Python :: 3 :: Only",
    "Programming Language :: Python :: 3.11",
    "Topic :: Text Editors :: Integrated Development Environments (IDE)",
}
# A distribution whose import name is not its name with "-" → "_".
IMPORT_NAMES = {"llama-cpp-python": "llama_cpp"}


def metadata(built: Built) -> Message:
    with zipfile.ZipFile(built.wheel) as wheel:
        [name] = [n for n in wheel.namelist() if re.fullmatch(r"codegen_lsp-[^/]+\.dist-info/METADATA", n)]
        return HeaderParser().parsestr(wheel.read(name).decode("utf-8"))


def requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def test_the_wheel_declares_its_license_as_an_spdx_expression(built: Built):
    meta = metadata(built)
    assert tuple(int(p) for p in meta["Metadata-Version"].split(".")) >= (2, 4), meta["Metadata-Version"]
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["License"] is None  # the deprecated free-text field
    assert [c for c in meta.get_all("Classifier", []) if c.startswith("License ::")] == []  # not with an expression


def test_the_wheel_has_classifiers_and_project_urls(built: Built):
    meta = metadata(built)
    assert CLASSIFIERS <= set(meta.get_all("Classifier", [])), meta.get_all("Classifier")
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL", []))
    assert {"Homepage", "Repository", "Issues", "Documentation"} <= set(urls), urls
    assert all(url.startswith("https://") for url in urls.values()), urls
    # The wheel and the VS Code extension name the same repository.
    extension = json.loads((REPO_ROOT / "editor-client" / "package.json").read_text(encoding="utf-8"))
    assert urls["Repository"] == extension["repository"]["url"]
    assert urls["Issues"] == urls["Homepage"] + "/issues"


def test_the_wheel_requires_only_what_an_index_has_and_the_package_imports(built: Built):
    """No extra names the development tools (codegen-lsp-devtools is on no index; they are a dependency
    group now), no torch in the runtime, and each runtime requirement is imported somewhere in the package
    (tree-sitter grammars by module name, through syntax/languages.py)."""
    meta = metadata(built)
    requirements = meta.get_all("Requires-Dist", [])
    assert set(meta.get_all("Provides-Extra", [])) <= {"convert"}, meta.get_all("Provides-Extra")
    assert [r for r in requirements if "extra ==" in r] == []
    names = {requirement_name(r) for r in requirements}
    assert not names & {"codegen-lsp-devtools", "torch", "transformers", "tokenizers", "pytest"}, names
    with zipfile.ZipFile(built.wheel) as wheel:
        code = "\n".join(wheel.read(n).decode("utf-8") for n in wheel.namelist() if n.endswith(".py"))
    unused = []
    for name in sorted(names):
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        used = rf"^\s*(import|from) {module}\b|[\"']{module}[\"']"
        if not re.search(used, code, re.MULTILINE):
            unused.append(f"{name} (import {module})")
    assert unused == [], f"runtime requirements the package never imports: {unused}"
    assert len(names) >= 15, names  # the search above ran over real requirements


def test_the_wheel_and_the_sdist_carry_the_license_file(built: Built):
    license_text = (REPO_ROOT / "LICENSE").read_bytes()
    assert license_text.lstrip().startswith(b"Apache License\n") and b"Version 2.0, January 2004" in license_text
    with zipfile.ZipFile(built.wheel) as wheel:
        in_wheel = [n for n in wheel.namelist() if re.fullmatch(r"codegen_lsp-[^/]+\.dist-info/licenses/LICENSE", n)]
        assert len(in_wheel) == 1, wheel.namelist()
        assert wheel.read(in_wheel[0]) == license_text
    with tarfile.open(built.sdist) as sdist:
        in_sdist = [m for m in sdist.getmembers() if re.fullmatch(r"codegen_lsp-[^/]+/LICENSE", m.name)]
        assert len(in_sdist) == 1, sdist.getnames()[:20]
        assert sdist.extractfile(in_sdist[0]).read() == license_text


def test_twine_check_passes(built: Built):
    """What `make dist` checks before anything is uploaded (twine comes with the `dist` dependency group)."""
    twine = shutil.which("twine", path=str(Path(sys.executable).parent))
    assert twine, "twine is not installed next to this Python: make dev (the dev dependency group includes dist)"
    done = subprocess.run([twine, "check", "--strict", built.wheel, built.sdist], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout
