#!/usr/bin/env bash
# The VS Code end-to-end tests: the packaged extension in code-server + Chromium, driven by pytest
# (tests/editors) through playwright-core (run.mjs). Usage, from anywhere:
#   editor-client/e2e/run-e2e.sh [extra pytest args, e.g. -k inline]
# Screenshots, driver results and the extension's output channel: bench-results/vscode-e2e/<test>/
set -euo pipefail

E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLIENT="$(cd "$E2E/.." && pwd)"
REPO="$(cd "$CLIENT/.." && pwd)"
VSIX="$CLIENT/dist/codegen-lsp.vsix"
PY="${PYTHON:-$REPO/.venv/bin/python}"
t0=$(date +%s)
log() { echo "[run-e2e] $*" >&2; }

# 1. code-server, Node 24 and Chromium (cached in .cache/code-server/).
"$E2E/install-code-server.sh" >/dev/null

# 2. playwright-core for the driver.
if [ ! -f "$E2E/node_modules/.package-lock.json" ] || [ "$E2E/package-lock.json" -nt "$E2E/node_modules/.package-lock.json" ]; then
  log "npm ci in $E2E"
  (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)
fi

# 3. The extension: CODEGEN_LSP_VSIX (e.g. the dist/codegen-lsp.vsix that `make dist` built) is installed as
#    it is; otherwise editor-client/dist/codegen-lsp.vsix, packaged again when missing or older than its
#    sources (`npm run package`, whose vscode:prepublish builds out/extension.js first).
if [ -n "${CODEGEN_LSP_VSIX:-}" ]; then
  [ -f "$CODEGEN_LSP_VSIX" ] || { log "CODEGEN_LSP_VSIX=$CODEGEN_LSP_VSIX does not exist"; exit 2; }
  VSIX="$(cd "$(dirname "$CODEGEN_LSP_VSIX")" && pwd)/$(basename "$CODEGEN_LSP_VSIX")"
  log "installing $VSIX as it is"
else
  stale=""
  if [ ! -f "$VSIX" ]; then
    stale="missing"
  else
    newer="$(cd "$CLIENT" && find src scripts images package.json package-lock.json tsconfig.json language-configuration.json \
      README.md LICENSE* .vscodeignore -newer "$VSIX" -type f 2>/dev/null | head -1 || true)"
    [ -n "$newer" ] && stale="older than $newer"
  fi
  if [ -n "$stale" ]; then
    log "packaging the extension ($stale)"
    cd "$CLIENT"
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
      npm ci --no-audit --no-fund --loglevel=error
    fi
    npm run package
  fi
fi
export CODEGEN_LSP_VSIX="$VSIX"

# 4. The tests.
cd "$REPO"
log "pytest tests/editors (screenshots: $REPO/bench-results/vscode-e2e/)"
status=0
CODEGEN_LSP_VSCODE_E2E=1 "$PY" -m pytest -q -p no:cacheprovider tests/editors -m vscode "$@" || status=$?
log "done in $(( $(date +%s) - t0 ))s (exit $status); screenshots and logs: $REPO/bench-results/vscode-e2e/"
exit $status
