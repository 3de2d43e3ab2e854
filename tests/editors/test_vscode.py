"""The codegen-lsp extension in a real VS Code (code-server + Chromium): inline suggestions accepted with
Tab, a word (ctrl+right) or a line (alt+end), "Synthesize from comments" from the palette and from the quick
fix menu, the toggle / per-language / snooze switches (no request reaches the server: lsp_recorder.py relays
and logs its traffic), the last suggestion's stats in the status tooltip (and a server without them), start
failures, crashes, a corrupt model, a slow model, machine-scoped settings and the .vsix itself. Screenshots
land in bench-results/vscode-e2e/<test>/."""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile

import pytest

from support.snippets import MTPB_STYLE_PROGRAM, comments_only

pytestmark = [pytest.mark.vscode, pytest.mark.skipif(
    os.environ.get("CODEGEN_LSP_VSCODE_E2E") != "1",
    reason="VS Code end-to-end tests need code-server and Chromium: run editor-client/e2e/run-e2e.sh "
           "(make e2e-vscode), which sets CODEGEN_LSP_VSCODE_E2E=1")]

SYNTHESIZE_ACTION = "Synthesize from comments (codegen-lsp)"


def model_settings(model, **extra) -> dict:
    return {"codegenLsp.model": str(model), "codegenLsp.client.pythonPath": sys.executable, **extra}


def test_inline_suggestion_accepted_with_tab(vscode, memorizing_codegen1):
    # tests/e2e/test_features.py: "def add(a, b):\n" + "    " at (1, 4) is answered with "return a + b".
    vscode.write("add.py", "")
    vscode.configure(**model_settings(memorizing_codegen1.gguf_path, **{"codegenLsp.maxTokens": 24}))
    vscode.start()
    vscode.drive("inline", "add.py", type="def add(a, b):", pressEnter=True)
    r = vscode.check()
    assert r["readyLabel"].startswith("codegen-lsp ready")
    assert "".join(r["ghost"]) == "return a + b", r["ghost"]
    assert (vscode.workspace / "add.py").read_text() == "def add(a, b):\n    return a + b"


def test_explicit_request_cycles_through_candidates(vscode, smollm2):
    """"Trigger Inline Suggestion" (an Invoked request) gets several suggestions from SmolLM2 (a real model);
    the next-suggestion key (Alt+]) changes the ghost text, and Tab inserts the one shown."""
    vscode.write("add.py", "def add(a, b):\n    return ")
    vscode.configure(**model_settings(smollm2, **{"codegenLsp.maxTokens": 16}))
    vscode.start()
    vscode.drive("cycle", "add.py", cycles=2)
    r = vscode.check()
    ghosts = r["ghosts"]
    assert ghosts[0].startswith("a + b") and len(set(ghosts)) >= 2, ghosts
    assert ghosts[1] != ghosts[0], ghosts  # the key showed another candidate
    assert (vscode.workspace / "add.py").read_text() == f"def add(a, b):\n    return {ghosts[-1]}"


def test_synthesize_from_the_command_palette(vscode, synthesizing_codegen1):
    text = comments_only(MTPB_STYLE_PROGRAM)
    assert text != MTPB_STYLE_PROGRAM and "print" not in text
    vscode.write("steps.py", text)
    vscode.configure(**model_settings(synthesizing_codegen1.gguf_path))
    vscode.start()
    vscode.drive("synthesizePalette", "steps.py")
    vscode.check()
    assert (vscode.workspace / "steps.py").read_text() == MTPB_STYLE_PROGRAM


def test_synthesize_from_the_quick_fix_menu(vscode, synthesizing_codegen1):
    vscode.write("steps.py", comments_only(MTPB_STYLE_PROGRAM))
    vscode.configure(**model_settings(synthesizing_codegen1.gguf_path))
    vscode.start()
    vscode.drive("synthesizeQuickFix", "steps.py", actionTitle=SYNTHESIZE_ACTION)
    r = vscode.check()
    assert any(SYNTHESIZE_ACTION in item for item in r["menuItems"]), r["menuItems"]
    assert (vscode.workspace / "steps.py").read_text() == MTPB_STYLE_PROGRAM


def test_server_command_missing(vscode, memorizing_codegen1):
    vscode.write("a.py", "x = 1\n")
    vscode.configure(**model_settings(memorizing_codegen1.gguf_path,
                                     **{"codegenLsp.client.serverCommand": ["/nonexistent/codegen-lsp", "serve"]}))
    vscode.start()
    vscode.drive("serverMissing", "a.py")
    r = vscode.check()
    assert r["toast"].startswith("codegen-lsp: cannot start the server (/nonexistent/codegen-lsp serve)"), r["toast"]
    note = next(n for n in r["notifications"] if n["message"] == r["toast"])
    assert note["severity"] == "error"
    assert {"How to install", "Show logs"} <= set(note["buttons"]), note
    # Not installed: the one message says how (a checkout's make install, or the make dist wheel), never PyPI.
    assert "make install" in r["toast"] and "dist/codegen_lsp-*.whl" in r["toast"], r["toast"]
    assert "It is not on PyPI" in r["toast"] and "pip install codegen-lsp" not in r["toast"], r["toast"]
    assert r["errorLabel"].startswith("codegen-lsp error")


def test_server_that_exits_at_once_is_a_start_failure(vscode, memorizing_codegen1):
    # Exiting before answering initialize is reported once as "cannot start", not restarted.
    vscode.write("a.py", "x = 1\n")
    vscode.configure(**model_settings(memorizing_codegen1.gguf_path, **{
        "codegenLsp.client.serverCommand": [sys.executable, "-c", "import sys; sys.exit(3)"]}))
    vscode.start()
    vscode.drive("serverMissing", "a.py")
    r = vscode.check()
    assert r["toast"].startswith("codegen-lsp: cannot start the server ("), r["toast"]
    assert "3" in r["toast"].split("):", 1)[1], r["toast"]  # the exit code is the reason
    assert not [n for n in r["notifications"] if "restarting" in n["message"]], r["notifications"]
    assert r["errorLabel"].startswith("codegen-lsp error")


# The real server, killed three seconds after it started: after initialize, so a crash mid-session.
CRASHING_SERVER = [sys.executable, "-c",
                   "import os, sys, threading; from codegen_lsp import cli, serve, server; "
                   "threading.Timer(3.0, os._exit, (3,)).start(); sys.exit(cli.main(['serve']))"]


def test_crashing_server_is_restarted_a_bounded_number_of_times(vscode, memorizing_codegen1):
    max_restarts = 2
    vscode.write("a.py", "x = 1\n")
    vscode.configure(**model_settings(memorizing_codegen1.gguf_path, **{
        "codegenLsp.client.serverCommand": CRASHING_SERVER, "codegenLsp.client.maxRestarts": max_restarts}))
    vscode.start()
    vscode.drive("serverCrashing", "a.py", settleMs=8000)
    r = vscode.check()
    seen = [n["message"] for n in r["notifications"]] + r["center"]
    restarts = sorted({m for m in seen if "stopped unexpectedly; restarting" in m})
    assert restarts == [f"codegen-lsp: the server stopped unexpectedly; restarting ({k}/{max_restarts})"
                        for k in range(1, max_restarts + 1)], restarts
    gave_up = {m for m in seen if "not restarting" in m}
    assert len(gave_up) == 1 and next(iter(gave_up)).startswith(
        f"codegen-lsp: the server crashed {max_restarts + 1} times in 3 minutes; not restarting."), gave_up
    final = next(n for n in r["notifications"] if "not restarting" in n["message"])
    assert final["severity"] == "error"
    # The output channel agrees: exactly max_restarts restarts, one give-up, then no new server.
    log = r["outputChannel"]
    assert log.count("stopped unexpectedly; restarting") == max_restarts, log[-3000:]
    assert log.count("not restarting") == 1, log[-3000:]
    # No other error toast (languageclient's own restart logic is off).
    others = [n for n in r["notifications"] if n["severity"] == "error" and "not restarting" not in n["message"]]
    assert others == [], others
    assert r["errorLabel"] and r["errorLabel"].startswith("codegen-lsp error"), r["errorLabel"]


def test_corrupt_model_file(vscode, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(os.urandom(4096))
    vscode.write("a.py", "x = 1\n")
    vscode.configure(**model_settings(bad))
    vscode.start()
    vscode.drive("badModel", "a.py")
    r = vscode.check()
    # server/codegen_lsp/gguf/inspect.py: ModelFileError(path, "not a GGUF file (convert it with ...)")
    assert r["errorLabel"].startswith("codegen-lsp error"), r["errorLabel"]
    assert "not a GGUF file" in r["errorLabel"], r["errorLabel"]


def test_slow_model_keeps_the_editor_responsive(vscode, slow_model):
    # Random weights: it rarely stops, so a suggestion runs the whole token budget (seconds here). The
    # test types on while the status bar says "generating" and checks each keystroke reaches the DOM
    # within 1 s, that the text is only ever what was typed, and that any ghost text sits at its end.
    vscode.write("slow.py", "")
    vscode.configure(**model_settings(slow_model.gguf_path, **{"codegenLsp.maxTokens": 256,
                                                             "codegenLsp.repetitionFilter": False}))
    vscode.start()
    line0, line1 = "def add(a, b):", "total = a + b"
    vscode.drive("slowModel", "slow.py", line0=line0, line1=line1, watchMs=6000, readyTimeoutMs=90000)
    r = vscode.check()
    latencies = [x["ms"] for x in r["latencies"]]
    ghosts = sum(bool(s["ghost"]) for s in r["samples"])
    print(f"status when typing on: {r['labelAtTypeOn']!r}; keystroke to DOM ms: max {max(latencies)}, "
          f"median {sorted(latencies)[len(latencies) // 2]}; samples with ghost text: {ghosts}/{len(r['samples'])}")
    assert r["labelAtTypeOn"].startswith("codegen-lsp generating"), r["statusHistory"]
    assert max(latencies) < 1000, r["latencies"]
    typed1 = r["indent"] + line1
    for s in r["samples"]:
        # The text is only ever what was typed (a suggestion is never applied by itself) ...
        assert s["lines"][0] == line0, s
        assert typed1.startswith(s["lines"][1]), s
        # ... and ghost text, when shown, sits after the typed text, never inside it.
        assert all(s["ghostAfterText"]), s
    assert r["samples"][-1]["lines"][1] == typed1, r["samples"][-1]
    assert (vscode.workspace / "slow.py").read_text() == f"{line0}\n{typed1}"


def test_typing_past_a_suggestion_never_leaves_stale_ghost_text(vscode, slow_synthesizing_codegen1):
    # A model big enough that a suggestion takes a few hundred ms, which memorized MTPB_STYLE_PROGRAM:
    # after "num" on the "numbers" step it suggests "bers = [3, 1, 2]".
    head = MTPB_STYLE_PROGRAM.split("numbers = ")[0]
    vscode.write("steps.py", head)
    vscode.configure(**model_settings(slow_synthesizing_codegen1.gguf_path))
    vscode.start()
    line = head.count("\n")
    target = "numbers = [3, 1, 2]"
    vscode.drive("typeOn", "steps.py", line=line, first="num", along="bers = [3", off="7", watchMs=4000)
    r = vscode.check()
    assert r["firstGhost"] == "bers = [3, 1, 2]", r["firstGhost"]
    # VS Code auto-closes "[": the typed line is "numbers = [...]" and the ghost text sits inside the brackets.
    for s in r["samples"]:
        if s["phase"] == "along" and s["ghost"]:
            assert s["rendered"] == target, s  # still the same suggestion, typed through
        if s["phase"] == "off" and s["line"] == "numbers = [37]":  # once the "7" is on screen
            assert s["ghost"] != ", 1, 2", s  # the suggestion made for "numbers = [3" is gone
    off = [s for s in r["samples"] if s["phase"] == "off"]
    assert off and off[-1]["line"] == "numbers = [37]", off[-1:]
    assert [s for s in r["samples"] if s["phase"] == "along" and s["ghost"]], "the suggestion vanished while typed through"
    assert (vscode.workspace / "steps.py").read_text() == head + "numbers = [37]"


def test_pick_model_switches_the_running_server(vscode, memorizing_codegen1, tiny_codegen1):
    """Pick model writes codegenLsp.model; the change reaches the server live (a reload, not a restart)."""
    vscode.write("a.py", "x = 1\n")
    other = vscode.write("models/other.gguf", tiny_codegen1.gguf_path.read_bytes())
    vscode.configure(**model_settings(memorizing_codegen1.gguf_path))
    vscode.start()
    vscode.drive("pickModel", "a.py", pick="other.gguf")
    r = vscode.check()
    assert r["readyLabel"] == f"codegen-lsp ready {memorizing_codegen1.gguf_path.name}"
    assert any("other.gguf" in row for row in r["pickRows"]) and any("embedded default" in row for row in r["pickRows"])
    settings = json.loads((vscode.workspace / ".vscode" / "settings.json").read_text())
    assert settings["codegenLsp.model"] == str(other)
    labels = [s["label"] for s in r["statusHistory"] if s["label"]]
    after_first_ready = labels[labels.index(r["readyLabel"]):]
    assert not any(label.startswith(("codegen-lsp starting", "codegen-lsp stopped")) for label in after_first_ready), \
        labels  # the server was not restarted
    # The picked model loaded live: the status bar (driven by codegenLsp/status) went ready with its name.
    assert "codegen-lsp ready other.gguf" in after_first_ready, labels


INLINE = "textDocument/inlineCompletion"


def inline_requests(traffic: list[dict], start_ms: int, end_ms: int | None = None) -> list[dict]:
    return [m for m in traffic if m["dir"] == "in" and m["method"] == INLINE
            and m["t"] >= start_ms and (end_ms is None or m["t"] < end_ms)]


def test_toggle_and_snooze_keep_requests_from_the_server(vscode, memorizing_codegen1):
    """Toggle suggestions off: typing a prefix the model completes shows no ghost text and sends no inline
    completion request (lsp_recorder.py sees every message the server gets); off for the language and a
    snooze likewise (Complete here says why instead), each in the status bar; back on, the same cursor gets
    its suggestion."""
    vscode.write("add.py", "")
    vscode.configure(**model_settings(memorizing_codegen1.gguf_path, **{
        "codegenLsp.maxTokens": 24, "codegenLsp.client.serverCommand": vscode.recorded_server()}))
    vscode.start()
    vscode.drive("toggle", "add.py", type="def add(a, b):", watchMs=4000)
    r = vscode.check()
    traffic = vscode.traffic()
    assert r["offLabel"] == "codegen-lsp off", r["statusHistory"]
    assert "Toggle suggestions" in (r["offTooltip"] or ""), r["offTooltip"]
    assert r["ghostsWhileOff"] == [], r["ghostsWhileOff"]
    assert r["linesWhileOff"][:2] == ["def add(a, b):", "    "], r["linesWhileOff"]
    # The typing reached the server (didChange), the requests did not.
    changes = [m for m in traffic if m["dir"] == "in" and m["method"] == "textDocument/didChange"
               and r["offAt"] <= m["t"] < r["onAt"]]
    assert changes, "the recorder saw no edit while off: it would see no request either"
    assert inline_requests(traffic, r["offAt"], r["onAt"]) == []
    # Nor does the server work ahead for us: the toggle pushed warmAfterMs 0, and no suggestion was computed
    # after the edits (with warm-ups on, one is, warmAfterMs after typing stops).
    pushes = [m for m in traffic if m["method"] == "workspace/didChangeConfiguration" and r["offAt"] <= m["t"]]
    assert pushes and pushes[0]["warmAfterMs"] == 0, pushes
    first_edit = changes[0]["t"]
    assert [m for m in traffic if m["method"] == "codegenLsp/stats" and first_edit <= m["t"] < r["onAt"]] == []
    assert r["languageOffLabel"] == "codegen-lsp off for python", r["statusHistory"]
    assert r["ghostsWhileLanguageOff"] == [], r["ghostsWhileLanguageOff"]
    assert any("suggestions are off for python" in n["message"] for n in r["notifications"]), r["notifications"]
    assert r["snoozedLabel"].startswith("codegen-lsp snoozed, 5 min left") or \
        r["snoozedLabel"].startswith("codegen-lsp snoozed, 4 min left"), r["snoozedLabel"]
    assert "snoozed until" in (r["snoozedTooltip"] or ""), r["snoozedTooltip"]
    assert r["ghostsWhileSnoozed"] == [], r["ghostsWhileSnoozed"]
    assert any("suggestions are snoozed until" in n["message"] for n in r["notifications"]), r["notifications"]
    assert inline_requests(traffic, r["onAt"], r["resumeAt"]) == []
    # Back on: the explicit request reaches the server and its suggestion shows.
    assert inline_requests(traffic, r["resumeAt"]), "no inline completion request after resuming"
    assert r["ghostOn"] == "return a + b", r["ghostOn"]


def test_status_tooltip_shows_the_last_latency_and_parts_accept(vscode, memorizing_codegen1):
    """After a suggestion the status bar tooltip has its latency, tokens and source (codegenLsp/stats);
    ctrl+right (VS Code's acceptNextWord) takes one word, alt+end (acceptNextLine, bound here) the line."""
    vscode.write("add.py", "")
    vscode.configure(**model_settings(memorizing_codegen1.gguf_path, **{"codegenLsp.maxTokens": 24}))
    vscode.start()
    vscode.drive("statsAndParts", "add.py", type="def add(a, b):", expectStats=True, acceptParts=True)
    r = vscode.check()
    assert r["ghost"] == "return a + b", r["ghost"]
    tooltip = r["tooltip"] or ""
    assert "codegen-lsp" in tooltip and "ready" in tooltip, tooltip
    assert re.search(r"Last suggestion: \d+ ms in the model \(prompt \d+ ms, generation \d+ ms\)", tooltip), tooltip
    assert re.search(r"Tokens: \d+ prompt tokens \(\d+ evaluated.*\), \d+ generated", tooltip), tooltip
    assert "Source: the model" in tooltip, tooltip
    # One word, then the rest of the (single-line) suggestion.
    assert r["afterWord"]["lines"][1].rstrip() == "    return", r["afterWord"]
    assert r["afterWord"]["ghost"].strip() == "a + b", r["afterWord"]
    assert r["afterLine"]["lines"][1] == "    return a + b" and r["afterLine"]["ghost"] == "", r["afterLine"]
    assert (vscode.workspace / "add.py").read_text() == "def add(a, b):\n    return a + b"


def test_old_server_without_stats_still_suggests(vscode, memorizing_codegen1):
    """A server that never sends codegenLsp/stats (withheld by the recorder): suggestions work, the tooltip
    just has no "Last suggestion" lines, and no error shows."""
    vscode.write("add.py", "")
    vscode.configure(**model_settings(memorizing_codegen1.gguf_path, **{
        "codegenLsp.maxTokens": 24,
        "codegenLsp.client.serverCommand": vscode.recorded_server(drop=("codegenLsp/stats",))}))
    vscode.start()
    vscode.drive("statsAndParts", "add.py", type="def add(a, b):", expectStats=False)
    r = vscode.check()
    assert r["ghost"] == "return a + b", r["ghost"]
    assert [m for m in vscode.traffic() if m.get("dropped")], "the server sent no stats to withhold"
    tooltip = r["tooltip"] or ""
    assert tooltip.startswith("codegen-lsp:") and "Last suggestion" not in tooltip, tooltip
    assert not [n for n in r["notifications"] if n["severity"] == "error"], r["notifications"]


def test_workspace_cannot_set_the_server_command(vscode, memorizing_codegen1):
    """client.serverCommand is machine-scoped: a workspace's .vscode/settings.json naming a program is
    ignored, and the server from the user settings starts."""
    vscode.write("a.py", "x = 1\n")
    vscode.machine_settings(**{"codegenLsp.client.pythonPath": sys.executable})
    vscode.write(".vscode/settings.json", json.dumps({
        "codegenLsp.model": str(memorizing_codegen1.gguf_path),
        "codegenLsp.client.serverCommand": ["/nonexistent/from-the-workspace", "serve"]}))
    vscode.start()
    vscode.drive("ready", "a.py")
    r = vscode.check()
    assert r["readyLabel"] == f"codegen-lsp ready {memorizing_codegen1.gguf_path.name}", r["statusHistory"]
    assert not [n for n in r["notifications"] if "cannot start" in n["message"]], r["notifications"]
    assert "from-the-workspace" not in r["outputChannel"], r["outputChannel"][-2000:]


def test_the_vsix_under_test_ships_the_bundle_license_and_icon_only(vscode_vsix, vscode_extensions_dir):
    """The .vsix these tests installed (run-e2e.sh's, or make dist's through CODEGEN_LSP_VSIX) is what a
    registry gets: the bundle, the manifest, README, LICENSE and the icon, nothing else (no sources, no
    node_modules); and the extension VS Code unpacked from it has its icon and license."""
    with zipfile.ZipFile(vscode_vsix) as z:
        names = sorted(n for n in z.namelist() if n.startswith("extension/"))
        manifest = json.loads(z.read("extension/package.json"))
        assert "MIT License" in z.read("extension/LICENSE.txt").decode()
        icon = z.read(f"extension/{manifest['icon']}")
    assert names == sorted(["extension/LICENSE.txt", "extension/package.json", "extension/readme.md",
                            "extension/out/extension.js", f"extension/{manifest['icon']}"]), names
    assert icon[:8] == b"\x89PNG\r\n\x1a\n" and icon[16:24] == (128).to_bytes(4, "big") * 2
    assert manifest["license"] == "MIT" and manifest["repository"]["url"].startswith("https://github.com/")
    installed = next(vscode_extensions_dir.glob("codegen-lsp.codegen-lsp-*"))
    assert (installed / manifest["icon"]).is_file() and (installed / "LICENSE.txt").is_file()
