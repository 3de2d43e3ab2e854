// Whether inline suggestions are on for a document: the user's switches, kept apart from the server.
// Pure: extension.ts reads the setting, owns the timer and applies the result.
//
// - `codegenLsp.client.enable`: a map like GitHub Copilot's `github.copilot.enable`, e.g.
//   {"*": true, "markdown": false}. A languageId's own entry wins, then "*", then on. "Toggle suggestions"
//   flips "*"; "Disable/Enable suggestions for <language>" writes the language's entry.
// - Snooze: off in this window until a time, then on again by itself (not a setting; a reload ends it).
// While suggestions are off the inline completion provider answers nothing and sends no request.

export const ENABLE_KEY = 'client.enable';
export const ALL = '*';

export type EnableMap = Readonly<Record<string, boolean>>;

/** The setting's value, with anything that is not a boolean entry dropped. */
export function readEnableMap(value: unknown): EnableMap {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {};
  }
  const out: Record<string, boolean> = {};
  for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
    if (typeof entry === 'boolean') {
      out[key] = entry;
    }
  }
  return out;
}

/** Whether suggestions are on for `languageId` (undefined: no document, "*" decides), and which entry said so. */
export function enabledFor(map: EnableMap, languageId: string | undefined): { enabled: boolean; by: string | undefined } {
  if (languageId !== undefined && languageId !== ALL && Object.hasOwn(map, languageId)) {
    return { enabled: map[languageId], by: languageId };
  }
  if (Object.hasOwn(map, ALL)) {
    return { enabled: map[ALL], by: ALL };
  }
  return { enabled: true, by: undefined };
}

/** The map after "Toggle suggestions": "*" flipped (from what it decides now). */
export function toggledAll(map: EnableMap): EnableMap {
  return { ...map, [ALL]: !enabledFor(map, undefined).enabled };
}

/** The map with `languageId` on or off; an entry that only repeats "*" is dropped. */
export function withLanguage(map: EnableMap, languageId: string, enabled: boolean): EnableMap {
  const out: Record<string, boolean> = { ...map };
  delete out[languageId];
  if (enabledFor(out, languageId).enabled !== enabled) {
    out[languageId] = enabled;
  }
  return out;
}

/** The off-for-a-while state of one window. `now` is injectable for tests. */
export class Snooze {
  private until: number | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Snoozes for `minutes` from now (again from now when already snoozed); returns the end time. */
  start(minutes: number): number {
    if (!Number.isFinite(minutes) || minutes <= 0) {
      throw new RangeError(`snooze minutes must be a positive number, got ${minutes}`);
    }
    this.until = this.now() + minutes * 60_000;
    return this.until;
  }

  cancel(): void {
    this.until = undefined;
  }

  /** The end time while snoozed; undefined once it has passed (the snooze then ends by itself). */
  endsAt(): number | undefined {
    if (this.until !== undefined && this.now() >= this.until) {
      this.until = undefined;
    }
    return this.until;
  }

  active(): boolean {
    return this.endsAt() !== undefined;
  }

  remainingMs(): number {
    const end = this.endsAt();
    return end === undefined ? 0 : end - this.now();
  }
}

export type SuggestionState =
  | { kind: 'on' }
  | { kind: 'snoozed'; until: number; remainingMs: number }
  | { kind: 'off' }
  | { kind: 'offForLanguage'; languageId: string };

/** What holds for a document of `languageId` now: a snooze first, then the enable map. */
export function suggestionState(map: EnableMap, languageId: string | undefined, snooze: Snooze): SuggestionState {
  const until = snooze.endsAt();
  if (until !== undefined) {
    return { kind: 'snoozed', until, remainingMs: snooze.remainingMs() };
  }
  const decision = enabledFor(map, languageId);
  if (decision.enabled) {
    return { kind: 'on' };
  }
  return decision.by === ALL || decision.by === undefined || languageId === undefined
    ? { kind: 'off' }
    : { kind: 'offForLanguage', languageId };
}

/** "12 min" (rounded up: a snooze never shows 0 while it runs), "1 h 05 min". */
export function formatRemaining(ms: number): string {
  const minutes = Math.max(1, Math.ceil(ms / 60_000));
  if (minutes < 60) {
    return `${minutes} min`;
  }
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** Local wall-clock time "14:05". */
export function formatClock(time: number): string {
  const d = new Date(time);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** The snooze durations offered by "Snooze suggestions…", in minutes. */
export const SNOOZE_CHOICES = [5, 15, 30, 60, 120];

/** The quick pick's label for a duration. */
export function snoozeChoiceLabel(minutes: number): string {
  return minutes < 60 ? `${minutes} minutes` : minutes === 60 ? '1 hour' : `${minutes / 60} hours`;
}

/**
 * Whether the server should do no work ahead for us: snoozed, or off in every language it serves. Then the
 * settings it gets say `warmAfterMs: 0` (no suggestion precomputed after an edit), whatever the user set;
 * off for some languages only leaves them alone (warm-ups are one setting for every file).
 */
export function quietEverywhere(map: EnableMap, languages: readonly string[], snooze: Snooze): boolean {
  return snooze.active() || languages.every((language) => !enabledFor(map, language).enabled);
}

/** The codegenLsp settings section as the server gets it while quiet. */
export function quietSection(section: unknown): Record<string, unknown> {
  const base = typeof section === 'object' && section !== null && !Array.isArray(section) ? section : {};
  return { ...(base as Record<string, unknown>), warmAfterMs: 0 };
}
