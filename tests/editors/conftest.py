"""The VS Code extension (editor-client/) in a real VS Code: code-server served on loopback, rendered by
Chromium and driven by playwright-core (editor-client/e2e/run.mjs). Python owns the workspace, code-server
and the assertions; run.mjs acts and reports what it saw as JSON.

Run with editor-client/e2e/run-e2e.sh (`make e2e-vscode`); tests here are skipped unless
CODEGEN_LSP_VSCODE_E2E=1, and then a missing install or vsix is a failure."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import REPO_ROOT

E2E_DIR = REPO_ROOT / "editor-client" / "e2e"
# The .vsix under test: run-e2e.sh sets it (the one it packaged, or the one make dist built).
VSIX = Path(os.environ.get("CODEGEN_LSP_VSIX") or REPO_ROOT / "editor-client" / "dist" / "codegen-lsp.vsix")
SHOTS_ROOT = REPO_ROOT / "bench-results" / "vscode-e2e"
ENABLED = os.environ.get("CODEGEN_LSP_VSCODE_E2E") == "1"
SKIP_REASON = ("VS Code end-to-end tests need code-server and Chromium: run editor-client/e2e/run-e2e.sh "
               "(make e2e-vscode), which sets CODEGEN_LSP_VSCODE_E2E=1")
SCENARIO_TIMEOUT_S = 110  # each scenario's browser part; code-server start is bounded separately
RECORDER = Path(__file__).resolve().parent / "lsp_recorder.py"
# Settings VS Code reads from user (or remote) settings only: in a workspace's settings.json it ignores them.
MACHINE_SCOPED = frozenset(
    key for key, prop in json.loads((REPO_ROOT / "editor-client" / "package.json").read_text())["contributes"][
        "configuration"]["properties"].items() if prop.get("scope") in ("machine", "application"))

# User settings for every scenario: a quiet, deterministic workbench.
USER_SETTINGS = {
    "security.workspace.trust.enabled": False,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.enableExperiments": False,
    "workbench.welcomePage.walkthroughs.openOnInstall": False,
    "telemetry.telemetryLevel": "off",
    "extensions.autoUpdate": False,
    "extensions.autoCheckUpdates": False,
    "extensions.ignoreRecommendations": True,
    "update.mode": "none",
    "editor.inlineSuggest.enabled": True,
    # Word-based suggestions could take Enter/Tab away from the inline suggestion under test.
    "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
    "editor.suggestOnTriggerCharacters": False,
    "editor.wordBasedSuggestions": "off",
    "editor.acceptSuggestionOnEnter": "off",
    "editor.minimap.enabled": False,
    "files.autoSave": "off",
    "files.insertFinalNewline": False,
    "files.trimTrailingWhitespace": False,
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vscode: drives the VS Code extension in code-server + Chromium "
                                       "(needs CODEGEN_LSP_VSCODE_E2E=1; run editor-client/e2e/run-e2e.sh)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Tools:
    node: str
    code_server: str
    chromium: str

    def env(self, home: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{Path(self.node).parent}{os.pathsep}{env.get('PATH', '')}"
        env["XDG_CONFIG_HOME"] = str(home / "config")
        env["XDG_DATA_HOME"] = str(home / "data")
        for key in ("VSCODE_IPC_HOOK_CLI", "VSCODE_PID", "ELECTRON_RUN_AS_NODE"):
            env.pop(key, None)
        return env


@pytest.fixture(scope="session")
def vscode_tools() -> Tools:
    if not ENABLED:
        pytest.skip(SKIP_REASON)
    script = E2E_DIR / "install-code-server.sh"
    if not script.exists():
        pytest.fail(f"{script} is missing")
    t = time.monotonic()
    proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        pytest.fail(f"install-code-server.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    print(f"code-server install check took {time.monotonic() - t:.1f}s")
    if not (E2E_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail(f"playwright-core is not installed: run `npm ci` in {E2E_DIR}")
    return Tools(node=values["NODE24"], code_server=values["CODE_SERVER"], chromium=values["CHROMIUM"])


@pytest.fixture(scope="session")
def vscode_vsix() -> Path:
    """The .vsix under test (CODEGEN_LSP_VSIX, else editor-client/dist/codegen-lsp.vsix)."""
    return VSIX


@pytest.fixture(scope="session")
def vscode_extensions_dir(vscode_tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One extensions folder with the freshly packaged vsix installed, shared by every scenario."""
    if not VSIX.exists():
        pytest.fail(f"{VSIX} is missing: build it with `cd editor-client && npm run package` (or `make dist`)")
    base = tmp_path_factory.mktemp("vscode-ext")
    ext_dir = base / "extensions"
    proc = subprocess.run(
        [vscode_tools.code_server, "--user-data-dir", str(base / "user-data"), "--extensions-dir", str(ext_dir),
         "--install-extension", str(VSIX), "--force"],
        capture_output=True, text=True, timeout=180, env=vscode_tools.env(base), start_new_session=True)
    installed = [p.name for p in ext_dir.glob("*") if p.is_dir()]
    if proc.returncode != 0 or not installed:
        pytest.fail(f"installing {VSIX.name} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    print(f"installed {installed} into {ext_dir}")
    return ext_dir


@dataclass
class Scenario:
    """Everything one scenario needs: a workspace, a fresh user-data-dir, and its own code-server."""

    name: str
    tools: Tools
    extensions_dir: Path
    root: Path
    shots: Path
    workspace: Path = field(init=False)
    user_data: Path = field(init=False)
    proc: subprocess.Popen | None = None
    port: int = 0
    log_path: Path = field(init=False)
    traffic_path: Path = field(init=False)
    result: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workspace = self.root / "workspace"
        self.user_data = self.root / "user-data"
        self.log_path = self.shots / "code-server.log"
        self.traffic_path = self.shots / "lsp-traffic.jsonl"
        self.workspace.mkdir(parents=True)
        (self.user_data / "User").mkdir(parents=True)
        (self.user_data / "User" / "settings.json").write_text(json.dumps(USER_SETTINGS, indent=2))

    def write(self, rel: str, text: str | bytes) -> Path:
        path = self.workspace / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
        return path

    def settings(self, **values) -> None:
        """Workspace settings (.vscode/settings.json). Machine-scoped ones are refused: VS Code ignores them
        there (a workspace cannot choose the program the extension runs); pass them to machine_settings()."""
        machine = sorted(MACHINE_SCOPED & values.keys())
        if machine:
            raise ValueError(f"{machine} are machine-scoped: VS Code ignores them in workspace settings; "
                             "use machine_settings()")
        self.write(".vscode/settings.json", json.dumps(values, indent=2))

    def configure(self, **values) -> None:
        """Settings where a person would put them: machine-scoped ones (the server command, the interpreter,
        the API key) in the machine's settings, the rest in the workspace's."""
        self.machine_settings(**{k: v for k, v in values.items() if k in MACHINE_SCOPED})
        self.settings(**{k: v for k, v in values.items() if k not in MACHINE_SCOPED})

    def machine_settings(self, **values) -> None:
        """code-server is a remote window: machine-scoped settings apply from the remote machine's settings
        (user-data-dir/Machine/settings.json, "Remote" in the settings editor); VS Code ignores them in the
        browser-side user settings as it does in a workspace's. On a desktop they go in the user settings."""
        path = self.user_data / "Machine" / "settings.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        current = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**current, **values}, indent=2))

    def recorded_server(self, *, drop: tuple[str, ...] = ()) -> list[str]:
        """A serverCommand running the real server (this Python's codegen_lsp) behind lsp_recorder.py: every
        message both ways lands in `self.traffic_path`; `drop` withholds the server's notifications of those
        methods (an older server)."""
        flags = [arg for method in drop for arg in ("--drop", method)]
        return [sys.executable, str(RECORDER), str(self.traffic_path), *flags, "--",
                sys.executable, "-m", "codegen_lsp", "serve", "--log-level", "warning"]

    def traffic(self) -> list[dict]:
        """What lsp_recorder.py saw so far: [{t (epoch ms), dir ("in": to the server), method, id}]."""
        if not self.traffic_path.exists():
            return []
        return [json.loads(line) for line in self.traffic_path.read_text().splitlines() if line.strip()]

    def start(self) -> None:
        self.port = free_port()
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [self.tools.code_server, "--auth", "none", "--bind-addr", f"127.0.0.1:{self.port}",
             "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
             "--disable-getting-started-override", "--ignore-last-opened",
             "--user-data-dir", str(self.user_data), "--extensions-dir", str(self.extensions_dir),
             str(self.workspace)],
            stdout=log, stderr=subprocess.STDOUT, env=self.tools.env(self.root), start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"code-server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"code-server did not answer on port {self.port} within 60 s; see {self.log_path}")

    def drive(self, scenario: str, file: str, **params) -> dict:
        """Run one run.mjs scenario against this code-server; returns (and keeps) its JSON result."""
        result_path = self.root / "result.json"
        all_params = {
            "scenario": scenario, "url": f"http://127.0.0.1:{self.port}/?folder={self.workspace}",
            "chromium": self.tools.chromium, "file": file, "shotsDir": str(self.shots),
            "resultPath": str(result_path), "timeoutMs": (SCENARIO_TIMEOUT_S - 10) * 1000, **params}
        env = self.tools.env(self.root) | {"E2E_PARAMS": json.dumps(all_params)}
        t = time.monotonic()
        with (self.shots / "run.mjs.log").open("w") as log:
            proc = subprocess.Popen([self.tools.node, str(E2E_DIR / "run.mjs")], stdout=log, stderr=subprocess.STDOUT,
                                    env=env, cwd=E2E_DIR, start_new_session=True)
            try:
                proc.wait(timeout=SCENARIO_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        wall = time.monotonic() - t
        self.result = json.loads(result_path.read_text()) if result_path.exists() else {
            "ok": False, "error": f"run.mjs wrote no result (exit {proc.returncode})"}
        self.result["driverWallS"] = round(wall, 1)
        self.result["outputChannel"] = self.output_channel()
        (self.shots / "result.json").write_text(json.dumps(self.result, indent=2))
        print(f"{self.name}: browser part {wall:.1f}s, screenshots and logs in {self.shots}")
        return self.result

    def output_channel(self) -> str:
        """The extension's "codegen-lsp" output channel, from the log files VS Code keeps for it."""
        texts = []
        for path in sorted(self.user_data.glob("logs/**/*codegen-lsp*")):
            if path.is_file():
                shutil.copy(path, self.shots / f"output-{path.name}")
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)

    def check(self) -> dict:
        """Fail with the driver's error, steps and logs when the scenario did not run to its end."""
        r = self.result
        if not r.get("ok"):
            steps = "\n".join(f"  {s['t'] / 1000:6.1f}s {s['what']}" for s in r.get("steps", []))
            raise AssertionError(
                f"{self.name}: {r.get('error')}\nsteps:\n{steps}\nstatus: {r.get('statusHistory')}\n"
                f"notifications: {r.get('notifications')}\nconsole: {r.get('console', [])[-15:]}\n"
                f"output channel (tail):\n{r.get('outputChannel', '')[-3000:]}\nscreenshots: {self.shots}")
        return r

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)


@pytest.fixture
def vscode(request: pytest.FixtureRequest, vscode_tools: Tools, vscode_extensions_dir: Path, tmp_path: Path):
    """A scenario: set up files and settings, then `start()` code-server and `drive(...)` the browser."""
    shots = SHOTS_ROOT / request.node.name
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    print(f"screenshots: {shots}")
    scenario = Scenario(request.node.name, vscode_tools, vscode_extensions_dir, tmp_path, shots)
    t = time.monotonic()
    try:
        yield scenario
    finally:
        scenario.stop()
        print(f"{request.node.name}: {time.monotonic() - t:.1f}s with code-server")
