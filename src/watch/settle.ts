/**
 * The one settle timer every trigger feeds. A file event and a poll that found new content are the
 * same kind of news: each starts or extends the quiet window, and the cap counts from the first of
 * them. Without this a poll landing mid-burst reloaded at once, and the burst cost extra reloads.
 */
import { dueIn, noteChange, type DebounceState, type Trigger } from './decide.js';

export class Settler {
  private state: DebounceState = {};
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly quietMs: number,
    private readonly maxDelayMs: number,
    /** Called once per settled burst, with what noticed the burst first. */
    private readonly onSettled: (trigger: Trigger) => void,
  ) {}

  /** A change was seen now. The monotonic clock: an NTP step during a burst must not stretch or cut it. */
  note(trigger: Trigger): void {
    this.state = noteChange(this.state, performance.now(), trigger);
    if (this.timer) clearTimeout(this.timer);
    const wait = dueIn(this.state, performance.now(), this.quietMs, this.maxDelayMs) ?? 0;
    this.timer = setTimeout(() => {
      const trigger = this.state.trigger ?? 'fs-event';
      this.timer = undefined;
      this.state = {};
      this.onSettled(trigger);
    }, wait);
  }

  /** A burst is waiting to settle (its check will see whatever a poll would see now). */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.state = {};
  }
}
