// Wires the pure modules to the VS Code API: starts the codegen-lsp server over stdio, shows its
// state in the status bar, restarts it after crashes (within limits) and contributes the commands.
//
// Inline completions: vscode-languageclient 11 registers InlineCompletionItemFeature among its
// built-in features (lib/common/client.js, registerBuiltinFeatures), which advertises
// textDocument.inlineCompletion and calls languages.registerInlineCompletionItemProvider when the
// server announces inlineCompletionProvider (LSP 3.18). Its ProposedFeatures.createAll() is empty,
// so registerProposedFeatures() is not needed.

import { spawn, type ChildProcess } from 'node:child_process';
import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  State,
  type CloseHandlerResult,
  type ErrorHandlerResult,
  type LanguageClientOptions,
  type ServerOptions,
  type StaticFeature,
} from 'vscode-languageclient/node';
import { LANGUAGES } from './languages';
import { gaveUpMessage, HOW_TO_INSTALL, INSTALL_HINT, INSTALL_URL, restartingMessage, SHOW_LOGS, startFailedMessage } from './messages';
import {
  CHOOSE_MODEL_FILE_NOTIFICATION,
  EXPERIMENTAL_CAPABILITIES,
  MODEL_CHOSEN_NOTIFICATION,
  onChooseModelFile,
  onModelChosen,
  USE_MODEL_COMMAND,
  type OfferUi,
} from './modelOffer';
import { LIST_MODELS_COMMAND, modelItems, synthesisMessage, synthesizeArguments, SYNTHESIZE_COMMAND } from './requests';
import { RestartPolicy } from './restartPolicy';
import {
  appendTail,
  describeEarlyExit,
  describeSpawnError,
  formatCommandLine,
  pythonFromExtensionApi,
  resolveServerCommand,
  type ServerCommand,
} from './serverCommand';
import { modelSettingValue, needsRestart, readClientSettings, SECTION, type ClientSettings } from './settings';
import { fromServerStatus, STATUS_NOTIFICATION, statusView, type ClientStatus } from './status';
import { EXCLUSION_NOTIFICATION, Exclusions } from './exclusion';
import { FOCUS_NOTIFICATION, FOCUS_SETTLE_MS, focusParams, SERVED_SCHEMES } from './focus';
import { DID_VIEW_NOTIFICATION, didViewParams, Settler, VIEW_SETTLE_MS, type DidViewParams } from './viewed';
import { isShownSuggestion, parseStats, STATS_NOTIFICATION, type SuggestionStats } from './stats';
import {
  ENABLE_KEY,
  formatClock,
  quietEverywhere,
  quietSection,
  readEnableMap,
  Snooze,
  SNOOZE_CHOICES,
  snoozeChoiceLabel,
  suggestionState,
  toggledAll,
  withLanguage,
  type EnableMap,
  type SuggestionState,
} from './suggestions';

export { LANGUAGES } from './languages';

/** Silences languageclient's own "couldn't create connection" popup while we report the failure ourselves. */
class CodegenClient extends LanguageClient {
  quietErrors = false;

  override error(message: string, data?: unknown, showNotification?: boolean | 'force'): void {
    super.error(message, data, this.quietErrors ? false : showNotification);
  }
}

/** What one spawned server process did: for the reason shown when it dies before initializing. */
interface Launch {
  stderr: string;
  spawnError?: string;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

/** Tells the server (capabilities.experimental.codegenLsp) that we handle its first-run offer's notifications. */
const offerFeature: StaticFeature = {
  fillClientCapabilities: (capabilities) => {
    capabilities.experimental = { ...(capabilities.experimental as object | undefined), ...EXPERIMENTAL_CAPABILITIES };
  },
  initialize: () => undefined,
  getState: () => ({ kind: 'static' }),
  clear: () => undefined,
};

/** The VS Code side of modelOffer.ts: messages, the file picker, settings, and the server's useModel command. */
function offerUi(client: LanguageClient): OfferUi {
  return {
    ask: (message, ...choices) => Promise.resolve(vscode.window.showInformationMessage(message, ...choices)),
    pickGguf: async () => {
      const picked = await vscode.window.showOpenDialog({
        canSelectMany: false,
        canSelectFolders: false,
        filters: { 'GGUF models': ['gguf'] },
        openLabel: 'Use this model',
        title: 'codegen-lsp: choose a .gguf model',
      });
      return picked?.[0]?.fsPath;
    },
    save: async (value, target) => {
      await vscode.workspace.getConfiguration(SECTION).update('model', value,
        target === 'workspace' ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global);
    },
    useInSession: async (value) => {
      await client.sendRequest(ExecuteCommandRequest.type, { command: USE_MODEL_COMMAND, arguments: [value] });
    },
    hasWorkspace: (vscode.workspace.workspaceFolders?.length ?? 0) > 0,
  };
}

function enableMap(): EnableMap {
  return readEnableMap(vscode.workspace.getConfiguration(SECTION).get(ENABLE_KEY));
}

/** Writes codegenLsp.client.enable where it takes effect: the workspace when it sets the key, else the user settings. */
async function saveEnableMap(map: EnableMap): Promise<void> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const seen = config.inspect(ENABLE_KEY);
  const target = seen?.workspaceFolderValue !== undefined || seen?.workspaceValue !== undefined
    ? vscode.ConfigurationTarget.Workspace
    : vscode.ConfigurationTarget.Global;
  await config.update(ENABLE_KEY, map, target);
}

/** The languageId the switches apply to for `document`: one the server serves, else none ("*" decides). */
function servedLanguage(document: vscode.TextDocument | undefined): string | undefined {
  return document && (LANGUAGES as readonly string[]).includes(document.languageId) ? document.languageId : undefined;
}

function clientSettings(): ClientSettings {
  const config = vscode.workspace.getConfiguration(SECTION);
  return readClientSettings((key) => config.get(key));
}

async function pythonFromExtension(): Promise<string | undefined> {
  try {
    const ext = vscode.extensions.getExtension('ms-python.python');
    if (!ext) {
      return undefined;
    }
    const exports: unknown = ext.isActive ? ext.exports : await ext.activate();
    return await pythonFromExtensionApi(exports);
  } catch {
    return undefined;
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    return err.message;
  }
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  return String(err);
}

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms));
}

class Controller implements vscode.Disposable {
  private client: CodegenClient | undefined;
  private starting: Promise<void> | undefined;
  private launch: Launch | undefined;
  /** True while our own start() runs: a close then is a start failure, not a crash. */
  private initialStart = false;
  /** True while we stop the client ourselves (restart, deactivate). */
  private stoppingByUs = false;
  private status: ClientStatus = { kind: 'starting' };
  /** Open documents the server will not complete, and why (codegenLsp/exclusion). */
  private readonly exclusions = new Exclusions();
  private readonly policy: RestartPolicy;
  /** Suggestions off in this window until a time ("Snooze suggestions…"). */
  private readonly snooze = new Snooze();
  private snoozeTimers: ReturnType<typeof setTimeout>[] = [];
  /** The last suggestion asked for, as the server's codegenLsp/stats told it; absent from servers that never send them. */
  private lastStats: SuggestionStats | undefined;
  /** Visible ranges that settled go to the server (its context from other files). */
  private readonly views = new Settler<DidViewParams>(VIEW_SETTLE_MS, (params) => {
    if (this.client?.isRunning()) {
      void this.client.sendNotification(DID_VIEW_NOTIFICATION, params).catch(() => undefined);
    }
  });
  /** The active editor, once it stayed active FOCUS_SETTLE_MS: the server warms up at its cursor. */
  private readonly focus = new Settler<vscode.TextEditor | undefined>(FOCUS_SETTLE_MS, (editor) => this.sendFocus(editor));

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly item: vscode.StatusBarItem,
  ) {
    this.policy = new RestartPolicy(clientSettings().maxRestarts);
  }

  setStatus(status: ClientStatus): void {
    this.status = status;
    this.render();
  }

  /** The status bar item: the server's state, or "off for this file (...)" for an excluded active document. */
  render(): void {
    const document = vscode.window.activeTextEditor?.document;
    const uri = document && this.client ? this.client.code2ProtocolConverter.asUri(document.uri) : undefined;
    const view = statusView(this.status, {
      offReason: this.exclusions.reasonFor(uri),
      suggestions: this.suggestionsFor(document),
      lastStats: this.lastStats,
    });
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.accessibilityInformation = { label: view.accessibilityLabel, role: 'button' };
    this.item.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  /** Snoozed, or off in every language: the server is asked for no work ahead (warmAfterMs 0; suggestions.ts). */
  private quiet(): boolean {
    return quietEverywhere(enableMap(), LANGUAGES, this.snooze);
  }

  /** The codegenLsp section the server gets: the user's, with warm-ups off while quiet. */
  private serverSection(): unknown {
    const section: unknown = vscode.workspace.getConfiguration().get(SECTION);
    return this.quiet() ? quietSection(section) : section;
  }

  /** Sends the settings again (a snooze began or ended: no configuration change tells the server). */
  private pushSettings(): void {
    const client = this.client;
    if (client?.isRunning()) {
      void client.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: this.serverSection() } })
        .catch(() => undefined);
    }
  }

  /** Whether suggestions are on for a document of this language now (snooze, then codegenLsp.client.enable). */
  suggestionsFor(document: vscode.TextDocument | undefined): SuggestionState {
    return suggestionState(enableMap(), servedLanguage(document), this.snooze);
  }

  /** "Toggle suggestions": ends a snooze, else flips codegenLsp.client.enable["*"]. */
  async toggle(): Promise<void> {
    if (this.snooze.active()) {
      this.endSnooze();
      return;
    }
    const map = toggledAll(enableMap());
    await saveEnableMap(map);
    this.render();
    this.hideIfOff();
    const language = servedLanguage(vscode.window.activeTextEditor?.document);
    const state = this.suggestionsFor(vscode.window.activeTextEditor?.document);
    if (language && (state.kind === 'on') !== map['*']) {
      // A language's own entry wins over "*": say so rather than look broken.
      void vscode.window.showInformationMessage(`codegen-lsp: suggestions are ${map['*'] ? 'on' : 'off'} ` +
        `except for ${language}, which codegenLsp.client.enable sets on its own.`);
    }
  }

  /** "Toggle suggestions for this language": codegenLsp.client.enable[languageId]. */
  async toggleLanguage(): Promise<void> {
    const document = vscode.window.activeTextEditor?.document;
    const language = servedLanguage(document);
    if (!language) {
      void vscode.window.showInformationMessage('codegen-lsp: open a file in one of the languages it serves first.');
      return;
    }
    const map = enableMap();
    const on = suggestionState(map, language, new Snooze()).kind === 'on';
    await saveEnableMap(withLanguage(map, language, !on));
    this.render();
    this.hideIfOff();
  }

  /** A suggestion on screen when they were turned off goes too (VS Code would keep it until the next key). */
  private hideIfOff(): void {
    if (this.suggestionsFor(vscode.window.activeTextEditor?.document).kind !== 'on') {
      void vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
    }
  }

  /** "Snooze suggestions…": a quick pick of durations (or `minutes` from a keybinding's args). */
  async pickSnooze(minutes?: unknown): Promise<void> {
    if (typeof minutes === 'number' && minutes > 0) {
      this.startSnooze(minutes);
      return;
    }
    type Item = vscode.QuickPickItem & { minutes: number };
    const items: Item[] = SNOOZE_CHOICES.map((m) => ({ label: snoozeChoiceLabel(m), minutes: m }));
    const until = this.snooze.endsAt();
    if (until !== undefined) {
      items.unshift({ label: 'Resume suggestions now', description: `snoozed until ${formatClock(until)}`, minutes: 0 });
    }
    const picked = await vscode.window.showQuickPick(items, {
      title: 'codegen-lsp: Snooze suggestions',
      placeHolder: 'No inline suggestions for… (they come back by themselves)',
    });
    if (!picked) {
      return;
    }
    if (picked.minutes === 0) {
      this.endSnooze();
    } else {
      this.startSnooze(picked.minutes);
    }
  }

  private startSnooze(minutes: number): void {
    this.clearSnoozeTimers();
    const until = this.snooze.start(minutes);
    this.output.info(`Suggestions snoozed until ${formatClock(until)}.`);
    // The remaining time in the status bar, and the end of the snooze, without any event to wait for.
    this.snoozeTimers.push(setInterval(() => this.render(), 15_000));
    this.snoozeTimers.push(setTimeout(() => this.endSnooze(), until - Date.now() + 50));
    this.render();
    this.hideIfOff();
    this.pushSettings();
  }

  private endSnooze(): void {
    this.clearSnoozeTimers();
    if (this.snooze.active()) {
      this.snooze.cancel();
    }
    this.output.info('Suggestions are back on (snooze ended).');
    this.render();
    this.pushSettings();
  }

  private clearSnoozeTimers(): void {
    for (const timer of this.snoozeTimers) {
      clearTimeout(timer);
    }
    this.snoozeTimers = [];
  }

  /** "Complete here" asks for a suggestion, unless the switches keep them off (then it says why). */
  async completeHere(): Promise<void> {
    const state = this.suggestionsFor(vscode.window.activeTextEditor?.document);
    if (state.kind !== 'on') {
      const why = state.kind === 'snoozed' ? `snoozed until ${formatClock(state.until)}`
        : state.kind === 'offForLanguage' ? `off for ${state.languageId}` : 'off';
      void vscode.window.showInformationMessage(`codegen-lsp: suggestions are ${why}.`);
      return;
    }
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
  }

  /** The status bar item's menu: the switches and the usual commands. */
  async showMenu(): Promise<void> {
    const document = vscode.window.activeTextEditor?.document;
    const language = servedLanguage(document);
    const state = this.suggestionsFor(document);
    const allOn = suggestionState(enableMap(), undefined, new Snooze()).kind === 'on';
    const languageOn = language !== undefined && suggestionState(enableMap(), language, new Snooze()).kind === 'on';
    type Item = vscode.QuickPickItem & { command: string };
    const items: Item[] = [
      { label: state.kind === 'snoozed' ? '$(play) Resume suggestions' : allOn ? '$(circle-slash) Turn suggestions off'
        : '$(check) Turn suggestions on', command: 'codegenLsp.toggle' },
      { label: '$(clock) Snooze suggestions…', command: 'codegenLsp.snooze' },
      ...(language ? [{ label: `${languageOn ? '$(circle-slash) Turn off' : '$(check) Turn on'} for ${language}`,
        command: 'codegenLsp.toggleLanguage' }] : []),
      { label: '$(output) Show logs', command: 'codegenLsp.showLogs' },
      { label: '$(symbol-file) Pick model', command: 'codegenLsp.pickModel' },
      { label: '$(debug-restart) Restart server', command: 'codegenLsp.restartServer' },
    ];
    const picked = await vscode.window.showQuickPick(items, { title: 'codegen-lsp' });
    if (picked) {
      await vscode.commands.executeCommand(picked.command);
    }
  }

  start(): Promise<void> {
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.setStatus({ kind: 'starting' });
    const settings = clientSettings();
    this.policy.setMaxRestarts(settings.maxRestarts);
    const usesPython = settings.serverCommand.length === 0 && settings.pythonPath.trim() === '';
    const cmd = resolveServerCommand({
      serverCommand: settings.serverCommand,
      pythonPath: settings.pythonPath,
      extensionPython: usesPython ? await pythonFromExtension() : undefined,
    });
    const commandLine = formatCommandLine(cmd);
    this.output.info(`Starting the server: ${commandLine}`);

    let client: CodegenClient;
    try {
      client = new CodegenClient('codegenLsp', 'codegen-lsp', this.serverOptions(cmd), this.clientOptions());
    } catch (err) {
      // The constructor throws e.g. when VS Code is older than languageclient requires.
      this.reportStartFailure(commandLine, errorText(err));
      return;
    }
    this.client = client;
    this.launch = undefined;
    this.exclusions.clear(); // a new server tells about each document as it is opened to it
    this.lastStats = undefined; // and about its own suggestions (an old server never does)
    client.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
      if (client === this.client) {
        this.setStatus(fromServerStatus(params));
      }
    });
    client.onNotification(STATS_NOTIFICATION, (params: unknown) => {
      const stats = parseStats(params);
      if (client === this.client && stats && isShownSuggestion(stats)) {
        this.lastStats = stats;
        this.render();
      }
    });
    client.onNotification(EXCLUSION_NOTIFICATION, (params: unknown) => {
      if (client === this.client && this.exclusions.update(params)) {
        this.render();
      }
    });
    client.registerFeature(offerFeature);
    const offerFailed = (err: unknown) => {
      this.output.error(`codegen-lsp model choice: ${errorText(err)}`);
      void vscode.window.showErrorMessage(`codegen-lsp: ${errorText(err)}`);
    };
    client.onNotification(MODEL_CHOSEN_NOTIFICATION, (params: unknown) => {
      onModelChosen(params, offerUi(client)).catch(offerFailed);
    });
    client.onNotification(CHOOSE_MODEL_FILE_NOTIFICATION, () => {
      onChooseModelFile(offerUi(client)).catch(offerFailed);
    });
    client.onDidChangeState((e) => {
      if (client !== this.client) {
        return;
      }
      if (e.newState === State.Running) {
        // Started or restarted: the document open in the active editor is the one worked in.
        this.focused(vscode.window.activeTextEditor);
      } else if (e.newState === State.Starting) {
        this.setStatus({ kind: 'starting' });
      } else if (e.newState === State.Stopped && !this.initialStart) {
        if (this.stoppingByUs) {
          this.setStatus({ kind: 'stopped' });
        } else if (this.status.kind !== 'error') {
          this.setStatus({ kind: 'error', reason: 'the server stopped' });
        }
      }
    });

    client.quietErrors = true;
    this.initialStart = true;
    try {
      await client.start();
      this.output.info('The server is running.');
    } catch (err) {
      const reason = await this.failureReason(err);
      this.client = undefined;
      void client.dispose(1000).catch(() => undefined);
      this.reportStartFailure(commandLine, reason);
    } finally {
      client.quietErrors = false;
      this.initialStart = false;
    }
  }

  /** Spawns the process ourselves to learn why it failed (ENOENT, exit code, last stderr line). */
  private serverOptions(cmd: ServerCommand): ServerOptions {
    return () =>
      new Promise<ChildProcess>((resolve, reject) => {
        const child = spawn(cmd.command, cmd.args, { stdio: 'pipe', env: process.env });
        const launch: Launch = {
          stderr: '',
          exited: new Promise((done) => child.once('exit', (code, signal) => done({ code, signal }))),
        };
        this.launch = launch;
        child.stderr?.on('data', (chunk: Buffer | string) => {
          launch.stderr = appendTail(launch.stderr, chunk.toString());
        });
        child.once('error', (err) => {
          launch.spawnError = describeSpawnError(err, cmd.command);
          reject(new Error(launch.spawnError));
        });
        child.once('spawn', () => resolve(child));
      });
  }

  private async failureReason(err: unknown): Promise<string> {
    const launch = this.launch;
    if (launch?.spawnError) {
      return launch.spawnError;
    }
    if (launch) {
      // The exit event can trail the closed connection by a moment.
      const exit = await Promise.race([launch.exited, delay(1000, undefined)]);
      if (exit) {
        return describeEarlyExit(exit.code, exit.signal, launch.stderr);
      }
    }
    return errorText(err);
  }

  private reportStartFailure(commandLine: string, reason: string): void {
    const message = startFailedMessage(commandLine, reason);
    this.output.error(message);
    for (const line of INSTALL_HINT) {
      this.output.info(line);
    }
    this.setStatus({ kind: 'error', reason });
    void vscode.window.showErrorMessage(message, HOW_TO_INSTALL, SHOW_LOGS).then((choice) => {
      if (choice === HOW_TO_INSTALL) {
        void vscode.env.openExternal(vscode.Uri.parse(INSTALL_URL));
      } else if (choice === SHOW_LOGS) {
        this.output.show();
      }
    });
  }

  private clientOptions(): LanguageClientOptions {
    return {
      documentSelector: LANGUAGES.flatMap((language) => SERVED_SCHEMES.map((scheme) => ({ scheme, language }))),
      outputChannel: this.output,
      synchronize: { configurationSection: SECTION },
      // No retry and no popup of its own: a failed start is reported once, by doStart.
      initializationFailedHandler: (error) => {
        this.output.error(`Server initialization failed: ${errorText(error)}`);
        return false;
      },
      errorHandler: {
        error: (error, _message, count): ErrorHandlerResult => {
          this.output.warn(`Connection error (${count ?? 1}): ${error.message}`);
          // A broken pipe is followed by `closed`, which decides about restarting.
          return { action: ErrorAction.Continue, handled: true };
        },
        closed: () => this.onClosed(),
      },
      middleware: {
        workspace: {
          // While quiet the server is told warmAfterMs 0, on the pull at start and on every push.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result) || !this.quiet()) {
              return result;
            }
            return result.map((value, i) => (params.items[i]?.section === SECTION ? quietSection(value) : value));
          },
          didChangeConfiguration: async (sections, next) => {
            if (!this.quiet()) {
              return next(sections);
            }
            await this.client?.sendNotification(DidChangeConfigurationNotification.type,
              { settings: { [SECTION]: this.serverSection() } });
          },
        },
        // Off, snoozed or off for the language: answer nothing and send no request.
        provideInlineCompletionItems: (document, position, context, token, next) =>
          this.suggestionsFor(document).kind === 'on' ? next(document, position, context, token) : undefined,
        // Inline suggestions are the product; the completion list only on request (completionFallback).
        provideCompletionItem: (document, position, context, token, next) =>
          clientSettings().completionFallback && this.suggestionsFor(document).kind === 'on'
            ? next(document, position, context, token) : undefined,
      },
    };
  }

  private onClosed(): CloseHandlerResult {
    if (this.initialStart) {
      // Exited before answering initialize: reported once by doStart as a start failure.
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    this.policy.setMaxRestarts(clientSettings().maxRestarts);
    const decision = this.policy.recordCrash();
    if (decision.restart) {
      const message = restartingMessage(decision.attempt, decision.max);
      this.output.warn(message);
      this.setStatus({ kind: 'error', reason: 'the server stopped unexpectedly; restarting' });
      void vscode.window.showWarningMessage(message);
      return { action: CloseAction.Restart, handled: true };
    }
    const message = gaveUpMessage(decision.crashes);
    this.output.error(message);
    this.setStatus({ kind: 'error', reason: `the server crashed ${decision.crashes} times in 3 minutes` });
    void vscode.window.showErrorMessage(message, SHOW_LOGS).then((choice) => {
      if (choice === SHOW_LOGS) {
        this.output.show();
      }
    });
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  async stop(): Promise<void> {
    const client = this.client;
    if (!client) {
      return;
    }
    this.stoppingByUs = true;
    try {
      await client.dispose(2000);
    } catch (err) {
      this.output.warn(`Stopping the server: ${errorText(err)}`);
    } finally {
      this.stoppingByUs = false;
      if (client === this.client) {
        this.client = undefined;
        this.setStatus({ kind: 'stopped' });
      }
    }
  }

  /** "Restart server" and launch-setting changes: a fresh crash count and a fresh client. */
  async restart(): Promise<void> {
    this.policy.reset();
    await this.starting?.catch(() => undefined);
    await this.stop();
    await this.start();
  }

  onMaxRestartsChanged(): void {
    this.policy.setMaxRestarts(clientSettings().maxRestarts);
  }

  /** The running client, waiting for a start in progress; undefined (and a message) otherwise. */
  async runningClient(): Promise<LanguageClient | undefined> {
    await this.starting?.catch(() => undefined);
    const client = this.client;
    if (client && client.state === State.Running) {
      return client;
    }
    void vscode.window.showErrorMessage('codegen-lsp: the server is not running.', SHOW_LOGS).then((choice) => {
      if (choice === SHOW_LOGS) {
        this.output.show();
      }
    });
    return undefined;
  }

  async synthesize(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('codegen-lsp: open a file to synthesize into.');
      return;
    }
    const client = await this.runningClient();
    if (!client) {
      return;
    }
    const doc = editor.document;
    const sel = editor.selection;
    const args = synthesizeArguments(client.code2ProtocolConverter.asUri(doc.uri), doc.version, {
      start: { line: sel.start.line, character: sel.start.character },
      end: { line: sel.end.line, character: sel.end.character },
    });
    try {
      const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, { command: SYNTHESIZE_COMMAND, arguments: args });
      const message = synthesisMessage(result);
      if (message) {
        void vscode.window.showInformationMessage(message);
      }
    } catch (err) {
      this.output.error(`Synthesize from comments failed: ${errorText(err)}`);
      void vscode.window.showErrorMessage(`codegen-lsp: Synthesize from comments failed: ${errorText(err)}`);
    }
  }

  async pickModel(): Promise<void> {
    const client = await this.runningClient();
    if (!client) {
      return;
    }
    let result: unknown;
    try {
      result = await client.sendRequest(ExecuteCommandRequest.type, { command: LIST_MODELS_COMMAND, arguments: [] });
    } catch (err) {
      void vscode.window.showErrorMessage(`codegen-lsp: cannot list the models: ${errorText(err)}`);
      return;
    }
    const picked = await vscode.window.showQuickPick(modelItems(result), {
      title: 'codegen-lsp: Pick model',
      placeHolder: 'Model for inline suggestions and synthesis',
      matchOnDescription: true,
    });
    if (!picked) {
      return;
    }
    const target = vscode.workspace.workspaceFolders?.length
      ? vscode.ConfigurationTarget.Workspace
      : vscode.ConfigurationTarget.Global;
    await vscode.workspace.getConfiguration(SECTION).update('model', modelSettingValue(picked.value), target);
  }

  showLogs(): void {
    this.output.show();
  }

  /** An editor scrolled or opened: tell the server which region it shows, once that settles. */
  viewed(editor: vscode.TextEditor, ranges: readonly vscode.Range[]): void {
    const params = didViewParams(editor.document.uri.toString(), editor.document.languageId,
      ranges.map((r) => ({ start: r.start.line, end: r.end.line })), LANGUAGES);
    if (params) {
      this.views.offer(params.uri, params);
    }
  }

  /** The active editor changed (undefined: none, or not a text editor): the last one settles. */
  focused(editor: vscode.TextEditor | undefined): void {
    this.render(); // "off for this file" follows the active editor at once
    this.focus.offer('active', editor);
  }

  /** A document was closed: what the server said of it no longer holds (it tells again on the next open). */
  closed(document: vscode.TextDocument): void {
    if (this.client) {
      this.exclusions.closed(this.client.code2ProtocolConverter.asUri(document.uri));
    }
  }

  private sendFocus(editor: vscode.TextEditor | undefined): void {
    const client = this.client;
    if (!editor || !client?.isRunning() || editor !== vscode.window.activeTextEditor) {
      return;
    }
    if (this.suggestionsFor(editor.document).kind !== 'on') {
      return; // a focus makes the server compute a suggestion ahead: none while they are off
    }
    const c2p = client.code2ProtocolConverter;
    const doc = editor.document;
    const params = focusParams({
      uri: c2p.asUri(doc.uri),
      scheme: doc.uri.scheme,
      languageId: doc.languageId,
      position: c2p.asPosition(editor.selection.active),
    }, LANGUAGES);
    if (params) {
      void client.sendNotification(FOCUS_NOTIFICATION, params).catch(() => undefined);
    }
  }

  dispose(): void {
    this.clearSnoozeTimers();
    this.views.dispose();
    this.focus.dispose();
    void this.stop();
  }
}

let controller: Controller | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('codegen-lsp', { log: true });
  const item = vscode.window.createStatusBarItem('codegen-lsp.status', vscode.StatusBarAlignment.Right, 100);
  item.name = 'codegen-lsp';
  item.command = 'codegenLsp.showMenu';
  const ctl = new Controller(output, item);
  controller = ctl;
  ctl.setStatus({ kind: 'starting' });
  item.show();

  context.subscriptions.push(
    output,
    item,
    ctl,
    vscode.commands.registerCommand('codegenLsp.synthesizeFromComments', () => ctl.synthesize()),
    vscode.commands.registerCommand('codegenLsp.completeHere', () => ctl.completeHere()),
    vscode.commands.registerCommand('codegenLsp.toggle', () => ctl.toggle()),
    vscode.commands.registerCommand('codegenLsp.snooze', (minutes?: unknown) => ctl.pickSnooze(minutes)),
    vscode.commands.registerCommand('codegenLsp.toggleLanguage', () => ctl.toggleLanguage()),
    vscode.commands.registerCommand('codegenLsp.showMenu', () => ctl.showMenu()),
    vscode.commands.registerCommand('codegenLsp.restartServer', () => ctl.restart()),
    vscode.commands.registerCommand('codegenLsp.pickModel', () => ctl.pickModel()),
    vscode.commands.registerCommand('codegenLsp.showLogs', () => ctl.showLogs()),
    vscode.window.onDidChangeTextEditorVisibleRanges((e) => ctl.viewed(e.textEditor, e.visibleRanges)),
    vscode.window.onDidChangeActiveTextEditor((editor) => ctl.focused(editor)),
    vscode.workspace.onDidCloseTextDocument((document) => ctl.closed(document)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (needsRestart((key) => e.affectsConfiguration(key))) {
        output.info('The server command changed; restarting the server.');
        void ctl.restart();
      } else if (e.affectsConfiguration(`${SECTION}.client.maxRestarts`)) {
        ctl.onMaxRestartsChanged();
      }
      if (e.affectsConfiguration(`${SECTION}.${ENABLE_KEY}`)) {
        ctl.render(); // the switches: the provider reads them on each request
      }
      // Other codegenLsp.* changes reach the server through didChangeConfiguration (synchronize).
    }),
  );
  void ctl.start();
}

export async function deactivate(): Promise<void> {
  const ctl = controller;
  controller = undefined;
  await ctl?.stop();
}
