// Drives one scenario of the codegen-lsp VS Code extension inside a running code-server with Chromium.
//
// Started by tests/editors (pytest), which owns code-server, the workspace and every assertion:
// this script only acts and observes. Input: the JSON object in env E2E_PARAMS:
//   { scenario, url, chromium, file, shotsDir, resultPath, timeoutMs, ...scenario parameters }
// Output: a JSON object written to resultPath (also when the scenario fails or times out):
//   { ok, error, steps: [{t, what}], statusHistory: [{t, label}], notifications: [{t, severity, message,
//     buttons}], console: [...], ...scenario observations }
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const P = JSON.parse(process.env.E2E_PARAMS ?? "{}");
const T0 = Date.now();
const since = () => Date.now() - T0;
const result = { scenario: P.scenario, ok: false, error: null, steps: [], statusHistory: [], notifications: [],
  console: [], screenshots: [] };
let page;
let browser;
let shotNo = 0;
let finished = false;

function step(what) {
  result.steps.push({ t: since(), what });
  console.error(`[e2e ${(since() / 1000).toFixed(1)}s] ${what}`);
}

async function finish(exitCode) {
  if (finished) return;
  finished = true;
  try {
    if (page) {
      await Promise.race([collectObservations(), new Promise((r) => setTimeout(r, 3000))]);
    }
  } catch { /* best effort */ }
  result.wallMs = since();
  writeFileSync(P.resultPath, JSON.stringify(result, null, 2));
  try { await Promise.race([browser?.close(), new Promise((r) => setTimeout(r, 5000))]); } catch { /* ignore */ }
  process.exit(exitCode);
}

// Nothing may hang: a hard deadline writes what was observed and exits.
setTimeout(async () => {
  result.error = result.error ?? `scenario deadline of ${P.timeoutMs} ms passed`;
  try { if (page) await Promise.race([shot("deadline"), new Promise((r) => setTimeout(r, 4000))]); } catch { /* */ }
  await finish(3);
}, P.timeoutMs ?? 100000).unref();

// --- In-page observer: records every status bar label and every notification as it appears. ---
const OBSERVER = () => {
  const e2e = (window.__e2e = { status: [], notes: [], seen: new Set() });
  const statusLabel = () => {
    const items = document.querySelectorAll(".statusbar-item");
    for (const el of items) {
      if ((el.id || "").endsWith("codegen-lsp.status")) {
        const a = el.querySelector("[aria-label]");
        return (a && a.getAttribute("aria-label")) || el.getAttribute("aria-label") || el.textContent;
      }
    }
    const any = document.querySelector('.statusbar [aria-label^="codegen-lsp"]');
    return any ? any.getAttribute("aria-label") : null;
  };
  const scan = () => {
    const now = Date.now();
    const label = statusLabel();
    const last = e2e.status[e2e.status.length - 1];
    if (!last || last.label !== label) e2e.status.push({ t: now, label });
    for (const item of document.querySelectorAll(".notification-list-item")) {
      const msgEl = item.querySelector(".notification-list-item-message");
      if (!msgEl) continue;
      const message = msgEl.textContent.trim();
      const icon = item.querySelector(".notification-list-item-icon");
      const cls = icon ? icon.className : "";
      const severity = /error/.test(cls) ? "error" : /warning/.test(cls) ? "warning" : "info";
      const key = `${severity}|${message}`;
      if (e2e.seen.has(key)) continue;
      e2e.seen.add(key);
      const buttons = [...item.querySelectorAll(".notification-list-item-buttons-container .monaco-button")]
        .map((b) => b.textContent.trim()).filter(Boolean);
      e2e.notes.push({ t: now, severity, message, buttons });
    }
  };
  e2e.scan = scan;
  let queued = false;
  const obs = new MutationObserver(() => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => { queued = false; scan(); });
  });
  const arm = () => {
    if (!document.body) { setTimeout(arm, 50); return; }
    obs.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["aria-label"],
      characterData: true });
    scan();
  };
  arm();
};

async function collectObservations() {
  const o = await page.evaluate(() => {
    const e2e = window.__e2e;
    if (!e2e) return null;
    e2e.scan();
    return { status: e2e.status, notes: e2e.notes };
  });
  if (!o) return;
  result.statusHistory = o.status.map((s) => ({ t: s.t - T0, label: s.label }));
  result.notifications = o.notes.map((n) => ({ ...n, t: n.t - T0 }));
}

// --- Helpers over the workbench DOM. ---
async function shot(label) {
  mkdirSync(P.shotsDir, { recursive: true });
  const name = `${String(++shotNo).padStart(2, "0")}-${label}.png`;
  await page.screenshot({ path: join(P.shotsDir, name), timeout: 10000 });
  result.screenshots.push(name);
}

async function statusLabel() {
  return page.evaluate(() => {
    for (const el of document.querySelectorAll(".statusbar-item")) {
      if ((el.id || "").endsWith("codegen-lsp.status")) {
        const a = el.querySelector("[aria-label]");
        return (a && a.getAttribute("aria-label")) || el.getAttribute("aria-label") || el.textContent;
      }
    }
    const any = document.querySelector('.statusbar [aria-label^="codegen-lsp"]');
    return any ? any.getAttribute("aria-label") : null;
  });
}

async function waitForStatus(prefix, timeout) {
  step(`wait for status "${prefix}…"`);
  const deadline = Date.now() + timeout;
  let label = null;
  while (Date.now() < deadline) {
    label = await statusLabel();
    if (label && label.startsWith(prefix)) { step(`status: ${label}`); return label; }
    await page.waitForTimeout(100);
  }
  throw new Error(`status bar never showed "${prefix}…" within ${timeout} ms (last: ${JSON.stringify(label)})`);
}

async function notificationTexts() {
  await page.evaluate(() => window.__e2e && window.__e2e.scan());
  return page.evaluate(() => (window.__e2e ? window.__e2e.notes.map((n) => n.message) : []));
}

async function waitForNotification(substring, timeout) {
  step(`wait for notification containing "${substring}"`);
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const hit = (await notificationTexts()).find((m) => m.includes(substring));
    if (hit) { step(`notification: ${hit}`); return hit; }
    await page.waitForTimeout(150);
  }
  throw new Error(`no notification containing "${substring}" within ${timeout} ms`);
}

async function openWorkbench() {
  step(`open ${P.url}`);
  await page.goto(P.url, { timeout: 60000 });
  await page.waitForSelector(".monaco-workbench", { timeout: 60000 });
  await page.waitForSelector(".part.statusbar", { timeout: 30000 });
  // The explorer is populated once the remote file system answers: then Quick Open can find files.
  await page.waitForSelector(".explorer-folders-view .monaco-list-row", { timeout: 30000 }).catch(() => {});
  step("workbench ready");
}

async function runPalette(command, { prefix = ">" } = {}) {
  step(`command palette: ${command}`);
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await input.waitFor({ state: "visible", timeout: 10000 });
  await input.fill(prefix + command);
  const row = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: command }).first();
  await row.waitFor({ state: "visible", timeout: 15000 });
  await row.click();
  await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 10000 }).catch(() => {});
}

async function openFile(name) {
  step(`quick open ${name}`);
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press("Control+P");
    const input = page.locator(".quick-input-widget .quick-input-box input");
    await input.waitFor({ state: "visible", timeout: 10000 });
    await input.fill(name);
    const row = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: name }).first();
    try {
      await row.waitFor({ state: "visible", timeout: 10000 });
      await row.click();
      break;
    } catch (e) {
      await page.keyboard.press("Escape");
      if (attempt >= 3) throw new Error(`Quick Open did not list ${name}: ${e.message}`);
    }
  }
  await page.locator(`.tabs-container .tab[aria-label^="${name}"]`).first().waitFor({ timeout: 15000 });
  await page.locator(".part.editor .monaco-editor .view-lines").first().waitFor({ timeout: 15000 });
  await focusEditor();
  step(`opened ${name}`);
}

async function focusEditor() {
  // Click into the text, right of the last line's end, so typing goes to the editor.
  const lines = page.locator(".part.editor .monaco-editor .view-lines").first();
  await lines.click({ position: { x: 5, y: 5 } });
  await page.waitForSelector(".part.editor .monaco-editor.focused", { timeout: 5000 });
}

// Text of the active editor's visible lines, ghost text excluded; and the ghost text shown.
async function editorState() {
  return page.evaluate(() => {
    const ed = document.querySelector(".part.editor .monaco-editor.focused")
      || document.querySelector(".part.editor .monaco-editor");
    if (!ed) return { lines: [], rendered: [], ghost: [], ghostAfterText: [] };
    const isGhost = (node) => {
      for (let el = node.parentElement; el && el !== ed; el = el.parentElement) {
        if (typeof el.className === "string" && /ghost-text/.test(el.className)) return true;
      }
      return false;
    };
    const rows = [...ed.querySelectorAll(".view-lines .view-line")]
      .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
    const lines = [];
    const rendered = [];
    const ghostAfterText = [];
    for (const row of rows) {
      let text = "";
      let all = "";
      let sawGhost = false;
      let textAfterGhost = false;
      const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const s = n.textContent.replace(/\u00a0/g, " ");
        all += s;
        if (isGhost(n)) { if (s.length) sawGhost = true; continue; }
        if (sawGhost && s.trim().length) textAfterGhost = true;
        text += s;
      }
      lines.push(text);
      rendered.push(all);
      if (sawGhost) ghostAfterText.push(!textAfterGhost);
    }
    const ghost = [...ed.querySelectorAll('[class*="ghost-text"]')]
      .filter((el) => !el.parentElement.closest('[class*="ghost-text"]'))
      .map((el) => el.textContent.replace(/\u00a0/g, " ")).filter((s) => s.length);
    return { lines, rendered, ghost, ghostAfterText };
  });
}

async function waitForGhost(timeout) {
  step("wait for ghost text");
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const s = await editorState();
    if (s.ghost.length) { step(`ghost text: ${JSON.stringify(s.ghost)}`); return s; }
    await page.waitForTimeout(100);
  }
  throw new Error(`no ghost text within ${timeout} ms`);
}

async function isDirty() {
  return page.locator(".tabs-container .tab.active.dirty").count().then((n) => n > 0);
}

async function save() {
  step("save (ctrl+s)");
  await page.keyboard.press("Control+S");
  await page.waitForFunction(() => !document.querySelector(".tabs-container .tab.active.dirty"), null,
    { timeout: 15000 });
  step("saved");
}

async function waitUntil(fn, timeout, what) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
}

async function waitForEdit(timeout) {
  // Synthesis done: the document became dirty and its text stopped changing for a while.
  step("wait for the edit");
  await waitUntil(isDirty, timeout, "the document to change");
  let last = JSON.stringify((await editorState()).lines);
  let stableSince = Date.now();
  await waitUntil(async () => {
    const now = JSON.stringify((await editorState()).lines);
    const label = (await statusLabel()) ?? "";
    if (now !== last) { last = now; stableSince = Date.now(); }
    return !label.startsWith("codegen-lsp generating") && Date.now() - stableSince > 1500;
  }, timeout, "the edit to settle");
  step("edit settled");
}


// Hovers the codegen-lsp status bar item and returns the text of the hover that shows (its tooltip).
async function statusTooltip(timeout = 8000) {
  const item = page.locator('.statusbar-item[id$="codegen-lsp.status"]').first();
  await page.mouse.move(0, 0);
  await page.waitForTimeout(300);
  await item.hover({ timeout: 5000 });
  const hover = page.locator(".workbench-hover, .monaco-hover:not(.hidden)").filter({ hasText: "codegen-lsp" }).first();
  try {
    await hover.waitFor({ state: "visible", timeout });
  } catch {
    return null;
  }
  return (await hover.innerText()).replace(/\u00a0/g, " ");
}

// Watches the editor for `ms`: every ghost text seen in that time.
async function ghostsDuring(ms) {
  const seen = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const g = (await editorState()).ghost.join("");
    if (g && !seen.includes(g)) seen.push(g);
    await page.waitForTimeout(100);
  }
  return seen;
}

// --- Scenarios. ---
const scenarios = {
  // Type a memorized prefix, see the suggestion as ghost text, accept it with Tab, save.
  async inline() {
    await openFile(P.file);
    result.readyLabel = await waitForStatus("codegen-lsp ready", P.readyTimeoutMs ?? 60000);
    await shot("ready");
    await focusEditor();
    step(`type ${JSON.stringify(P.type)}`);
    await page.keyboard.type(P.type, { delay: 40 });
    if (P.pressEnter) await page.keyboard.press("Enter");
    const s = await waitForGhost(P.ghostTimeoutMs ?? 30000);
    result.ghost = s.ghost;
    result.linesWithGhost = s.lines;
    await shot("ghost-text");
    step("accept with Tab");
    await page.keyboard.press("Tab");
    await waitUntil(async () => !(await editorState()).ghost.length, 5000, "the ghost text to go");
    result.linesAccepted = (await editorState()).lines;
    await shot("accepted");
    await save();
  },

  // Ask explicitly (Invoked: several suggestions), then cycle with the next-suggestion key, accept the one shown.
  async cycle() {
    await openFile(P.file);
    result.readyLabel = await waitForStatus("codegen-lsp ready", P.readyTimeoutMs ?? 60000);
    await focusEditor();
    await page.keyboard.press("Control+End");
    await runPalette("Trigger Inline Suggestion");
    let s = await waitForGhost(P.ghostTimeoutMs ?? 30000);
    result.ghosts = [s.ghost.join("")];
    await shot("first-candidate");
    for (let i = 0; i < (P.cycles ?? 2); i++) {
      step("next suggestion (alt+])");
      const before = result.ghosts[result.ghosts.length - 1];
      await page.keyboard.press("Alt+BracketRight");
      await waitUntil(async () => {
        s = await editorState();
        return s.ghost.length && s.ghost.join("") !== before;
      }, 5000, "another suggestion").catch(() => {});
      result.ghosts.push((await editorState()).ghost.join(""));
      await shot(`candidate-${i + 2}`);
    }
    step("accept with Tab");
    await page.keyboard.press("Tab");
    await waitUntil(async () => !(await editorState()).ghost.length, 5000, "the ghost text to go");
    result.linesAccepted = (await editorState()).lines;
    await save();
  },

  // Run "codegen-lsp: Synthesize from comments" from the command palette.
  async synthesizePalette() {
    await openFile(P.file);
    result.readyLabel = await waitForStatus("codegen-lsp ready", P.readyTimeoutMs ?? 60000);
    await shot("comments-only");
    await runPalette("codegen-lsp: Synthesize from comments");
    await waitForEdit(P.editTimeoutMs ?? 60000);
    await shot("synthesized");
    await save();
  },

  // Select everything, open the quick fix menu (ctrl+.), choose "Synthesize from comments (codegen-lsp)".
  async synthesizeQuickFix() {
    await openFile(P.file);
    result.readyLabel = await waitForStatus("codegen-lsp ready", P.readyTimeoutMs ?? 60000);
    await focusEditor();
    await page.keyboard.press("Control+A");
    // As a person would: wait for the lightbulb (the code actions for the selection are known), then ctrl+.
    step("wait for the lightbulb");
    await page.locator('.part.editor [class*="lightBulbWidget"], .part.editor [class*="lightbulb-glyph"]').first()
      .waitFor({ state: "visible", timeout: 15000 }).catch(() => step("no lightbulb seen"));
    await page.waitForTimeout(500);
    const menu = page.locator(".action-widget:not(.action-list-submenu-panel)").first();
    for (let attempt = 1; ; attempt++) {
      step(`quick fix menu (ctrl+.), attempt ${attempt}`);
      await page.keyboard.press("Control+.");
      try {
        await menu.waitFor({ state: "visible", timeout: 7000 });
        break;
      } catch (e) {
        result.quickFixRetries = attempt;
        await shot(`quick-fix-attempt-${attempt}-no-menu`);
        if (attempt >= 3) throw e;
        await page.keyboard.press("Escape");
        await page.keyboard.press("Control+A");
      }
    }
    await page.waitForTimeout(300);
    result.menuItems = await menu.locator(".monaco-list-row").allTextContents();
    await shot("quick-fix-menu");
    const item = menu.locator(".monaco-list-row", { hasText: P.actionTitle }).first();
    await item.waitFor({ state: "visible", timeout: 10000 });
    step(`choose ${P.actionTitle}`);
    await item.click();
    await waitForEdit(P.editTimeoutMs ?? 60000);
    await shot("synthesized");
    await save();
  },

  // The server cannot be started: an error notification and an error status.
  async serverMissing() {
    await openFile(P.file);
    result.toast = await waitForNotification("codegen-lsp: cannot start the server", 45000);
    result.errorLabel = await waitForStatus("codegen-lsp error", 15000);
    await shot("cannot-start");
  },

  // The server keeps exiting: bounded restart warnings, then a final error.
  async serverCrashing() {
    await openFile(P.file);
    result.finalToast = await waitForNotification("not restarting", P.crashTimeoutMs ?? 90000);
    await page.waitForTimeout(1000);  // the toast fades in
    await shot("crashed");
    // Let anything still in flight arrive; then look at every notification in the center too.
    await page.waitForTimeout(P.settleMs ?? 4000);
    result.errorLabel = await statusLabel();
    await runPalette("Notifications: Show Notifications");
    await page.waitForTimeout(500);
    result.center = await page.locator(".notifications-center .notification-list-item-message").allTextContents();
    await shot("notification-center");
  },

  // The model file is not a GGUF: the status bar says error with the server's reason.
  async badModel() {
    await openFile(P.file);
    result.errorLabel = await waitForStatus("codegen-lsp error", 60000);
    await page.locator(".statusbar-item").filter({ has: page.locator('[aria-label^="codegen-lsp error"]') })
      .first().hover({ timeout: 3000 }).catch(() => {});
    await page.waitForTimeout(800);
    await shot("bad-model");
  },

  // A slow model: keystrokes must show up promptly while the model is busy, and no stale ghost text.
  async slowModel() {
    await openFile(P.file);
    result.readyLabel = await waitForStatus("codegen-lsp ready", P.readyTimeoutMs ?? 90000);
    await focusEditor();
    const latencies = [];
    const samples = [];
    let typed = "";
    // Waits until line `lineNo` (ghost text excluded) starts with `want`; auto-closed brackets may follow.
    const expectLine = async (lineNo, want, record) => {
      const t = Date.now();
      const deadline = t + 5000;
      for (;;) {
        const s = await editorState();
        if ((s.lines[lineNo] ?? "").startsWith(want)) {
          if (record) samples.push({ t: since(), lines: s.lines, ghost: s.ghost, ghostAfterText: s.ghostAfterText });
          return Date.now() - t;
        }
        if (Date.now() > deadline) return 5000 + (Date.now() - deadline);
        await page.waitForTimeout(10);
      }
    };
    step(`type ${JSON.stringify(P.line0)}`);
    for (const ch of P.line0) {
      const t = Date.now();
      await page.keyboard.type(ch);
      typed += ch;
      const wait = await expectLine(0, typed, false);
      latencies.push({ key: ch, ms: Date.now() - t, domMs: wait });
    }
    await page.keyboard.press("Enter");
    // Type on only once the model is busy generating a suggestion for the new line.
    await waitForStatus("codegen-lsp generating", P.generatingTimeoutMs ?? 5000).catch(() => {});
    result.labelAtTypeOn = await statusLabel();
    await shot("while-generating");
    step(`keep typing ${JSON.stringify(P.line1)}`);
    const indent = (await editorState()).lines[1] ?? "";
    typed = indent;
    for (const ch of P.line1) {
      const t = Date.now();
      await page.keyboard.type(ch);
      typed += ch;
      const wait = await expectLine(1, typed, true);
      latencies.push({ key: ch, ms: Date.now() - t, domMs: wait });
    }
    result.indent = indent;
    await shot("typed-on");
    // Watch for a while after typing stops: any ghost text must sit at the end of the typed text.
    const until = Date.now() + (P.watchMs ?? 6000);
    while (Date.now() < until) {
      const s = await editorState();
      samples.push({ t: since(), lines: s.lines, ghost: s.ghost, ghostAfterText: s.ghostAfterText });
      await page.waitForTimeout(200);
    }
    await shot("after-watch");
    result.labelAfterTyping = await statusLabel();
    result.latencies = latencies;
    result.samples = samples;
    await page.keyboard.press("Escape");
    await save();
  },

  // A suggestion is shown; typing what it begins with keeps it consistent, typing something else drops
  // it: at no point may ghost text that belongs to older text stay on screen.
  async typeOn() {
    await openFile(P.file);
    result.readyLabel = await waitForStatus("codegen-lsp ready", P.readyTimeoutMs ?? 60000);
    await focusEditor();
    await page.keyboard.press("Control+End");
    const sample = async (phase) => {
      const s = await editorState();
      result.samples.push({ t: since(), phase, line: s.lines[P.line] ?? "", rendered: s.rendered[P.line] ?? "",
        ghost: s.ghost.join("") });
    };
    result.samples = [];
    step(`type ${JSON.stringify(P.first)}`);
    await page.keyboard.type(P.first, { delay: 40 });
    const s = await waitForGhost(P.ghostTimeoutMs ?? 30000);
    result.firstGhost = s.ghost.join("");
    await shot("suggestion");
    step(`type along the suggestion ${JSON.stringify(P.along)}`);
    for (const ch of P.along) {
      await page.keyboard.type(ch);
      for (let i = 0; i < 3; i++) { await sample("along"); await page.waitForTimeout(40); }
    }
    await shot("typed-along");
    step(`type off the suggestion ${JSON.stringify(P.off)}`);
    await page.keyboard.type(P.off);
    const until = Date.now() + (P.watchMs ?? 4000);
    while (Date.now() < until) { await sample("off"); await page.waitForTimeout(50); }
    await shot("typed-off");
    await page.keyboard.press("Escape");
    await save();
  },

  // "codegen-lsp: Pick model" → choose P.pick: the model setting changes and the running server reloads.
  async pickModel() {
    await openFile(P.file);
    result.readyLabel = await waitForStatus("codegen-lsp ready", P.readyTimeoutMs ?? 60000);
    await runPalette("codegen-lsp: Pick model");
    const row = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: P.pick }).first();
    await row.waitFor({ state: "visible", timeout: 15000 });
    result.pickRows = await page.locator(".quick-input-widget .quick-input-list .monaco-list-row").allTextContents();
    await shot("model-picker");
    step(`choose ${P.pick}`);
    await row.click();
    result.pickedLabel = await waitForStatus(`codegen-lsp ready ${P.pick}`, P.readyTimeoutMs ?? 60000);
    await shot("picked");
  },

  // Toggle suggestions off: typing shows no ghost text (the Python side checks that no inline completion
  // request reached the server); snooze and resume; toggle on again: a suggestion comes.
  async toggle() {
    await openFile(P.file);
    result.readyLabel = await waitForStatus("codegen-lsp ready", P.readyTimeoutMs ?? 60000);
    await shot("ready");
    result.offAt = Date.now();
    await runPalette("codegen-lsp: Toggle suggestions");
    result.offLabel = await waitForStatus("codegen-lsp off", 10000);
    result.offTooltip = await statusTooltip();
    await shot("off-tooltip");
    await focusEditor();
    await page.keyboard.press("Control+End");
    step(`type ${JSON.stringify(P.type)} while off`);
    await page.keyboard.type(P.type, { delay: 40 });
    await page.keyboard.press("Enter");
    result.ghostsWhileOff = await ghostsDuring(P.watchMs ?? 4000);
    result.linesWhileOff = (await editorState()).lines;
    await shot("typed-while-off");
    result.onAt = Date.now();
    await runPalette("codegen-lsp: Toggle suggestions");
    result.onLabel = await waitForStatus("codegen-lsp ready", 10000);
    // Off for this language only (codegenLsp.client.enable.python = false), then on again.
    await runPalette("codegen-lsp: Toggle suggestions for this language");
    result.languageOffLabel = await waitForStatus("codegen-lsp off for", 10000);
    await focusEditor();
    await page.keyboard.press("Control+End");
    step("Complete here (alt+\\) while off for the language");
    await page.keyboard.press("Alt+Backslash");
    result.ghostsWhileLanguageOff = await ghostsDuring(P.snoozeWatchMs ?? 2000);
    await shot("off-for-language");
    await runPalette("codegen-lsp: Toggle suggestions for this language");
    result.languageOnLabel = await waitForStatus("codegen-lsp ready", 10000);
    // Snooze: the status says so with the time left; "Resume suggestions now" ends it.
    await runPalette("codegen-lsp: Snooze suggestions…");
    const row = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: "5 minutes" }).first();
    await row.waitFor({ state: "visible", timeout: 10000 });
    result.snoozeRows = await page.locator(".quick-input-widget .quick-input-list .monaco-list-row").allTextContents();
    await row.click();
    result.snoozedLabel = await waitForStatus("codegen-lsp snoozed", 10000);
    result.snoozedTooltip = await statusTooltip();
    await shot("snoozed-tooltip");
    await focusEditor();
    await page.keyboard.press("Control+End");
    step("Complete here (alt+\\) while snoozed");
    await page.keyboard.press("Alt+Backslash");
    result.ghostsWhileSnoozed = await ghostsDuring(P.snoozeWatchMs ?? 2000);
    result.resumeAt = Date.now();
    await runPalette("codegen-lsp: Snooze suggestions…");
    const resume = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: "Resume suggestions now" }).first();
    await resume.waitFor({ state: "visible", timeout: 10000 });
    await resume.click();
    result.resumedLabel = await waitForStatus("codegen-lsp ready", 10000);
    await focusEditor();
    await page.keyboard.press("Control+End");
    step("Complete here (alt+\\) with suggestions on");
    await page.keyboard.press("Alt+Backslash");
    const s = await waitForGhost(P.ghostTimeoutMs ?? 30000);
    result.ghostOn = s.ghost.join("");
    await shot("on-again");
    await page.keyboard.press("Escape");
  },

  // A suggestion, then the status bar tooltip (its last latency, from codegenLsp/stats); then accept the
  // next word (VS Code's ctrl+right) and the next line (alt+end, bound by the extension).
  async statsAndParts() {
    await openFile(P.file);
    result.readyLabel = await waitForStatus("codegen-lsp ready", P.readyTimeoutMs ?? 60000);
    await focusEditor();
    step(`type ${JSON.stringify(P.type)}`);
    await page.keyboard.type(P.type, { delay: 40 });
    await page.keyboard.press("Enter");
    const s = await waitForGhost(P.ghostTimeoutMs ?? 30000);
    result.ghost = s.ghost.join("");
    // The stats notification trails the answer by a moment: hover until the tooltip has it (or time is up).
    const deadline = Date.now() + (P.statsTimeoutMs ?? 8000);
    do {
      result.tooltip = await statusTooltip();
      if (!P.expectStats || (result.tooltip ?? "").includes("Last suggestion")) break;
    } while (Date.now() < deadline);
    await shot("tooltip-with-stats");
    await page.mouse.move(0, 0);
    if (P.acceptParts) {
      await page.waitForFunction(() => document.querySelector(".part.editor .monaco-editor.focused"), null, { timeout: 5000 });
      step("accept next word (ctrl+right)");
      await page.keyboard.press("Control+ArrowRight");
      await page.waitForTimeout(500);
      const w = await editorState();
      result.afterWord = { lines: w.lines, ghost: w.ghost.join("") };
      await shot("accepted-word");
      step("accept next line (alt+end)");
      await page.keyboard.press("Alt+End");
      await page.waitForTimeout(500);
      const l = await editorState();
      result.afterLine = { lines: l.lines, ghost: l.ghost.join("") };
      await shot("accepted-line");
      await save();
    }
  },

  // The server starts and its model is ready.
  async ready() {
    await openFile(P.file);
    result.readyLabel = await waitForStatus("codegen-lsp ready", P.readyTimeoutMs ?? 60000);
    await shot("ready");
  },

  // Plain workbench smoke test (no extension needed): open a file, type, save.
  async smoke() {
    await openFile(P.file);
    await focusEditor();
    await page.keyboard.type(P.type ?? "x = 1", { delay: 30 });
    result.lines = (await editorState()).lines;
    await shot("typed");
    await save();
  },
};

try {
  if (!scenarios[P.scenario]) throw new Error(`unknown scenario ${P.scenario}`);
  browser = await chromium.launch({
    executablePath: P.chromium,
    headless: true,
    timeout: 60000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  await context.addInitScript(OBSERVER);
  page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning" || /codegen/i.test(m.text())) {
      result.console.push(`${since()} ${m.type()}: ${m.text()}`.slice(0, 2000));
    }
  });
  page.on("pageerror", (e) => result.console.push(`${since()} pageerror: ${e.message}`.slice(0, 2000)));
  await openWorkbench();
  await scenarios[P.scenario]();
  result.ok = true;
  step("scenario done");
  await finish(0);
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
  step(`failed: ${e && e.message}`);
  try { if (page) await shot("failure"); } catch { /* ignore */ }
  await finish(1);
}
