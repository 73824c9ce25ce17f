/** The one settle timer all triggers feed, on fake timers: what fires, when, and with which trigger. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Trigger } from '../../src/watch/decide.js';
import { Settler } from '../../src/watch/settle.js';

let fired: { at: number; trigger: Trigger }[];
let settler: Settler;
const QUIET = 200;
const CAP = 2000;

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
  fired = [];
  settler = new Settler(QUIET, CAP, (trigger) => fired.push({ at: Date.now(), trigger }));
});
afterEach(() => {
  settler.stop();
  vi.useRealTimers();
});

/** Notes `trigger` at each of the given times (ms from 0). */
async function changesAt(times: number[], trigger: Trigger | ((t: number) => Trigger)): Promise<void> {
  for (const t of times) {
    await vi.advanceTimersByTimeAsync(t - Date.now());
    settler.note(typeof trigger === 'function' ? trigger(t) : trigger);
  }
}

describe('Settler', () => {
  it('fires once, QUIET after the last change of a burst', async () => {
    await changesAt([0, 50, 100, 150, 300], 'fs-event');
    expect(settler.pending).toBe(true);
    await vi.advanceTimersByTimeAsync(5000);
    expect(fired).toEqual([{ at: 500, trigger: 'fs-event' }]);
    expect(settler.pending).toBe(false);
  });

  it('fires twice when the changes are further apart than QUIET', async () => {
    await changesAt([0, 150, 400], 'fs-event');
    await vi.advanceTimersByTimeAsync(5000);
    expect(fired.map((f) => f.at)).toEqual([350, 600]);
  });

  it('lets a poll that finds a change extend a burst of file events instead of firing on its own', async () => {
    // 20 swaps 50 ms apart with a poll seeing new content every 100 ms in between: one reload.
    const times = Array.from({ length: 20 }, (_, i) => i * 50);
    const polls = [25, 125, 225, 325, 425, 525, 625, 725, 825, 925];
    const all = [...times, ...polls].sort((a, b) => a - b);
    await changesAt(all, (t) => (polls.includes(t) ? 'poll' : 'fs-event'));
    await vi.advanceTimersByTimeAsync(5000);
    expect(fired).toEqual([{ at: 950 + QUIET, trigger: 'fs-event' }]);
  });

  it('lets a poll start a window too, reported as the trigger, and an event extend it', async () => {
    await changesAt([0], 'poll');
    await changesAt([150], 'fs-event');
    await vi.advanceTimersByTimeAsync(QUIET - 1);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(fired).toEqual([{ at: 150 + QUIET, trigger: 'poll' }]);
  });

  it('fires at the cap while changes keep coming, then starts a new window for later changes', async () => {
    const times = Array.from({ length: 60 }, (_, i) => i * 100); // 0 … 5900, never quiet for QUIET
    await changesAt(times, (t) => (t % 300 === 0 ? 'poll' : 'fs-event'));
    await vi.advanceTimersByTimeAsync(5000);
    // Each burst fires CAP after its first change; the change at the same instant opens the next one.
    expect(fired.map((f) => f.at)).toEqual([2000, 4000, 6000]);
    expect(fired.map((f) => f.trigger)).toEqual(['poll', 'fs-event', 'fs-event']);
  });

  it('fires nothing after stop()', async () => {
    await changesAt([0], 'fs-event');
    settler.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(fired).toEqual([]);
  });
});
