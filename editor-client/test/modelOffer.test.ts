import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  chosenModel,
  EXPERIMENTAL_CAPABILITIES,
  onChooseModelFile,
  onModelChosen,
  saveQuestion,
  type OfferUi,
  type SaveTarget,
} from '../src/modelOffer';

/** A stand-in for the VS Code API that records every call and answers from a script. */
class FakeUi implements OfferUi {
  asked: { message: string; choices: string[] }[] = [];
  saved: { value: string; target: SaveTarget }[] = [];
  session: string[] = [];
  picks = 0;

  constructor(
    private readonly answer: string | undefined,
    private readonly picked: string | undefined = undefined,
    public hasWorkspace = true,
  ) {}

  ask(message: string, ...choices: string[]): Promise<string | undefined> {
    this.asked.push({ message, choices });
    return Promise.resolve(this.answer);
  }

  pickGguf(): Promise<string | undefined> {
    this.picks += 1;
    return Promise.resolve(this.picked);
  }

  save(value: string, target: SaveTarget): Promise<void> {
    this.saved.push({ value, target });
    return Promise.resolve();
  }

  useInSession(value: string): Promise<void> {
    this.session.push(value);
    return Promise.resolve();
  }
}

test('the capabilities name both notifications the server may send', () => {
  assert.deepEqual(EXPERIMENTAL_CAPABILITIES, { codegenLsp: { modelChosen: true, chooseModelFile: true } });
});

test('after a download: saved only where the person says', async () => {
  const workspace = new FakeUi('Workspace');
  assert.deepEqual(await onModelChosen({ model: 'codegen-350M-mono' }, workspace),
    { kind: 'saved', value: 'codegen-350M-mono', target: 'workspace' });
  assert.deepEqual(workspace.asked, [{
    message: 'codegen-lsp: save codegenLsp.model = "codegen-350M-mono" to your settings?',
    choices: ['Workspace', 'User', 'No'],
  }]);
  assert.deepEqual(workspace.saved, [{ value: 'codegen-350M-mono', target: 'workspace' }]);

  const user = new FakeUi('User');
  await onModelChosen({ model: 'codegen-350M-mono' }, user);
  assert.deepEqual(user.saved, [{ value: 'codegen-350M-mono', target: 'user' }]);

  for (const answer of ['No', undefined]) {  // declined or closed: nothing written, the server keeps its switch
    const ui = new FakeUi(answer);
    assert.deepEqual(await onModelChosen({ model: 'codegen-350M-mono' }, ui), { kind: 'session', value: 'codegen-350M-mono' });
    assert.deepEqual([ui.saved, ui.session], [[], []]);
  }
});

test('without a workspace only User is offered, and a stale Workspace answer saves nothing', async () => {
  const ui = new FakeUi('Workspace', undefined, false);
  await onModelChosen({ model: 'm' }, ui);
  assert.deepEqual(ui.asked[0].choices, ['User', 'No']);
  assert.deepEqual(ui.saved, []);
});

test('a malformed modelChosen asks nothing', async () => {
  for (const params of [null, 'm', {}, { model: 3 }, { model: ' ' }]) {
    const ui = new FakeUi('Workspace');
    assert.deepEqual(await onModelChosen(params, ui), { kind: 'nothing' });
    assert.deepEqual(ui.asked, []);
  }
  assert.equal(chosenModel({ model: '/m/a.gguf' }), '/m/a.gguf');
});

test('choosing a file: saved with consent, else used for this session only', async () => {
  const saved = new FakeUi('User', '/models/a.gguf');
  assert.deepEqual(await onChooseModelFile(saved), { kind: 'saved', value: '/models/a.gguf', target: 'user' });
  assert.deepEqual([saved.saved, saved.session], [[{ value: '/models/a.gguf', target: 'user' }], []]);
  assert.equal(saved.asked[0].message, saveQuestion('/models/a.gguf'));

  const declined = new FakeUi('No', '/models/a.gguf');
  assert.deepEqual(await onChooseModelFile(declined), { kind: 'session', value: '/models/a.gguf' });
  assert.deepEqual([declined.saved, declined.session], [[], ['/models/a.gguf']]);

  const cancelled = new FakeUi('Workspace', undefined);
  assert.deepEqual(await onChooseModelFile(cancelled), { kind: 'nothing' });
  assert.deepEqual([cancelled.picks, cancelled.asked, cancelled.saved, cancelled.session], [1, [], [], []]);
});
