// Decides whether a crashed server is restarted: at most `maxRestarts` crashes within a sliding
// window (3 minutes). Pure, so the counting is unit-tested without VS Code.

export const CRASH_WINDOW_MS = 3 * 60 * 1000;

export type CrashDecision =
  | { restart: true; attempt: number; max: number }
  | { restart: false; crashes: number; max: number };

export class RestartPolicy {
  private crashes: number[] = [];

  constructor(
    private maxRestarts: number,
    private readonly now: () => number = Date.now,
    private readonly windowMs: number = CRASH_WINDOW_MS,
  ) {}

  /** Reads the limit again (the setting can change while the client runs). */
  setMaxRestarts(maxRestarts: number): void {
    this.maxRestarts = maxRestarts;
  }

  /** Records one crash and says whether to restart; `attempt` is k in "restarting (k/N)". */
  recordCrash(): CrashDecision {
    const t = this.now();
    this.crashes = this.crashes.filter((c) => t - c < this.windowMs);
    const earlier = this.crashes.length;
    this.crashes.push(t);
    if (earlier < this.maxRestarts) {
      return { restart: true, attempt: earlier + 1, max: this.maxRestarts };
    }
    return { restart: false, crashes: earlier + 1, max: this.maxRestarts };
  }

  /** "Restart server" starts a fresh count. */
  reset(): void {
    this.crashes = [];
  }
}
