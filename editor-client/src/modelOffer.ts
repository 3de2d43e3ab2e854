// The client's half of the server's first-run offer (server/codegen_lsp/features/offer.py). Pure: every
// VS Code call goes through `OfferUi`, which extension.ts implements.
//
// Nothing is written to settings without consent: after the server downloaded a model
// (`codegenLsp/modelChosen`) or the person picked a .gguf (`codegenLsp/chooseModelFile`), we ask
// "Save codegenLsp.model = … to your settings?" (Workspace / User / No). Saving changes the setting and the
// server follows through didChangeConfiguration; "No" after a download leaves the server's in-memory
// switch as it is, and "No" after picking a file switches this session only (`codegen-lsp.useModel`).

export const MODEL_CHOSEN_NOTIFICATION = 'codegenLsp/modelChosen';
export const CHOOSE_MODEL_FILE_NOTIFICATION = 'codegenLsp/chooseModelFile';
export const USE_MODEL_COMMAND = 'codegen-lsp.useModel';

/** What we tell the server we handle: capabilities.experimental.codegenLsp. */
export const EXPERIMENTAL_CAPABILITIES = { codegenLsp: { modelChosen: true, chooseModelFile: true } };

export const SAVE_WORKSPACE = 'Workspace';
export const SAVE_USER = 'User';
export const SAVE_NO = 'No';

export type SaveTarget = 'workspace' | 'user';

export interface OfferUi {
  /** A modal-free question with buttons; undefined when closed. */
  ask(message: string, ...choices: string[]): Promise<string | undefined>;
  /** A file picker for one .gguf file; its path, or undefined when cancelled. */
  pickGguf(): Promise<string | undefined>;
  /** Writes codegenLsp.model. */
  save(value: string, target: SaveTarget): Promise<void>;
  /** Switches the running server for this session only (no setting written). */
  useInSession(value: string): Promise<void>;
  /** Whether a workspace is open (else only User can be offered). */
  hasWorkspace: boolean;
}

export type Outcome =
  | { kind: 'saved'; value: string; target: SaveTarget }
  | { kind: 'session'; value: string }
  | { kind: 'nothing' };

export function saveQuestion(value: string): string {
  return `codegen-lsp: save codegenLsp.model = ${JSON.stringify(value)} to your settings?`;
}

/** The model value of a `codegenLsp/modelChosen` notification, or undefined if malformed. */
export function chosenModel(params: unknown): string | undefined {
  if (typeof params !== 'object' || params === null) {
    return undefined;
  }
  const model = (params as { model?: unknown }).model;
  return typeof model === 'string' && model.trim() !== '' ? model : undefined;
}

/** Asks whether to save `value`; saves where the person says. */
export async function askToSave(value: string, ui: OfferUi): Promise<SaveTarget | undefined> {
  const choices = ui.hasWorkspace ? [SAVE_WORKSPACE, SAVE_USER, SAVE_NO] : [SAVE_USER, SAVE_NO];
  const answer = await ui.ask(saveQuestion(value), ...choices);
  const target: SaveTarget | undefined = answer === SAVE_WORKSPACE && ui.hasWorkspace
    ? 'workspace'
    : answer === SAVE_USER ? 'user' : undefined;
  if (target) {
    await ui.save(value, target);
  }
  return target;
}

/** `codegenLsp/modelChosen`: the server already runs the model; only ask whether to keep it. */
export async function onModelChosen(params: unknown, ui: OfferUi): Promise<Outcome> {
  const value = chosenModel(params);
  if (value === undefined) {
    return { kind: 'nothing' };
  }
  const target = await askToSave(value, ui);
  return target ? { kind: 'saved', value, target } : { kind: 'session', value };
}

/** `codegenLsp/chooseModelFile`: pick a .gguf, then save it (with consent) or use it for this session. */
export async function onChooseModelFile(ui: OfferUi): Promise<Outcome> {
  const path = await ui.pickGguf();
  if (!path) {
    return { kind: 'nothing' };
  }
  const target = await askToSave(path, ui);
  if (target) {
    return { kind: 'saved', value: path, target };
  }
  await ui.useInSession(path);
  return { kind: 'session', value: path };
}
