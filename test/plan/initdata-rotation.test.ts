/** The reference-value rotation (pure) and the byte-preserving edit of reference-values.json. */
import { describe, expect, it } from 'vitest';
import {
  decideRotation,
  entryValues,
  rvpsTime,
  type ConsumerObservation,
  type LiveEntry,
  type RotationInput,
  type RotationState,
} from '../../src/plan/initdata.js';
import { scanReferenceValues, spliceReferenceValues } from '../../src/publish/coco/rvps-json.js';

const H = 3600_000;
const DAY = 24 * H;
const T0 = new Date('2026-12-01T10:00:00.123Z');
const A = { id: 'sha256:aaa', values: { pcr08: 'a'.repeat(64) } };
const B = { id: 'sha256:bbb', values: { pcr08: 'b'.repeat(64) } };
const deployment = (current: boolean, settled = current): ConsumerObservation => ({ ref: 'Deployment/zeta/pep', current, checkable: true, settled });
const peerPods = (current: boolean): ConsumerObservation => ({
  ref: 'ConfigMap/openshift-sandboxed-containers-operator/peer-pods-cm',
  current,
  checkable: false,
  settled: false,
});

function input(over: Partial<RotationInput>): RotationInput {
  return {
    now: T0,
    desired: A,
    algs: { pcr08: 'sha256' },
    format: 'hash-value',
    live: new Map(),
    consumers: [deployment(false)],
    overlapMs: 24 * H,
    validMs: 365 * DAY,
    refreshMs: 30 * DAY,
    force: false,
    ...over,
  };
}

/** Runs the decision, then "applies" it: the live entries and consumers as the targets would leave them. */
function applied(i: RotationInput): { state: RotationState; live: Map<string, LiveEntry> } {
  const d = decideRotation(i);
  expect(d.conflicts).toEqual([]);
  const state = d.rvps?.state ?? i.state!;
  const live = new Map(i.live);
  for (const [n, text] of d.rvps?.set ?? []) live.set(n, { raw: JSON.parse(text), count: 1 });
  return { state, live };
}

describe('rotation with overlap', () => {
  it('first run: adds the reference value, then the initdata; expiration from validDays, without fractional seconds', () => {
    const d = decideRotation(input({}));
    expect(d.update).toEqual(['Deployment/zeta/pep']);
    expect(d.rvps?.why).toEqual(['initdata sha256:aaa added']);
    expect(JSON.parse(d.rvps!.set.get('pcr08')!)).toEqual({
      name: 'pcr08',
      expiration: '2027-12-01T10:00:00Z',
      'hash-value': [{ alg: 'sha256', value: A.values.pcr08 }],
    });
    expect(d.rvps!.state.current).toEqual({ ...A, since: '2026-12-01T10:00:00Z' });
  });

  it('a change keeps the old value beside the new one until the rollout finished, then a later run removes it', () => {
    let { state, live } = applied(input({}));
    // Next payload: initdata B. Write 1 lists B and A; write 2 updates the consumer.
    const t1 = new Date(T0.getTime() + 2 * H);
    const d1 = decideRotation(input({ now: t1, desired: B, state, live, consumers: [deployment(false)] }));
    expect(d1.update).toEqual(['Deployment/zeta/pep']);
    expect(entryValues(JSON.parse(d1.rvps!.set.get('pcr08')!))).toEqual([B.values.pcr08, A.values.pcr08]);
    expect(d1.overlapping).toEqual([
      { id: 'sha256:aaa', values: A.values, retiredAt: rvpsTime(t1), until: rvpsTime(new Date(t1.getTime() + 24 * H)), waitingFor: ['Deployment/zeta/pep'] },
    ]);
    ({ state, live } = applied(input({ now: t1, desired: B, state, live })));
    // Annotation written but the rollout still runs: A stays.
    const d2 = decideRotation(input({ now: new Date(t1.getTime() + H), desired: B, state, live, consumers: [deployment(true, false)] }));
    expect(d2.rvps).toBeUndefined();
    expect(d2.overlapping.map((o) => o.id)).toEqual(['sha256:aaa']);
    // Rollout finished: A goes, long before the overlap time.
    const d3 = decideRotation(input({ now: new Date(t1.getTime() + 2 * H), desired: B, state, live, consumers: [deployment(true, true)] }));
    expect(d3.rvps?.why).toEqual(['removed sha256:aaa (every consumer runs the current initdata)']);
    expect(entryValues(JSON.parse(d3.rvps!.set.get('pcr08')!))).toEqual([B.values.pcr08]);
    expect(d3.update).toEqual([]);
  });

  it('a failure between the two writes: the next run writes only the initdata, the old value stays listed', () => {
    const first = applied(input({ consumers: [peerPods(false)] }));
    const t1 = new Date(T0.getTime() + H);
    // Write 1 happened (B beside A), write 2 failed: peer-pods-cm still holds A.
    const afterWrite1 = applied(input({ now: t1, desired: B, ...first, consumers: [peerPods(false)] }));
    const retry = decideRotation(input({ now: new Date(t1.getTime() + H), desired: B, ...afterWrite1, consumers: [peerPods(false)] }));
    expect(retry.rvps).toBeUndefined();
    expect(retry.update).toEqual(['ConfigMap/openshift-sandboxed-containers-operator/peer-pods-cm']);
    expect(entryValues(afterWrite1.live.get('pcr08')!.raw)).toEqual([B.values.pcr08, A.values.pcr08]);
  });

  it('peer-pods-cm consumers cannot be checked: the old value goes only when the overlap time is over', () => {
    const first = applied(input({ consumers: [peerPods(false)] }));
    const t1 = new Date(T0.getTime() + H);
    const s = applied(input({ now: t1, desired: B, ...first, consumers: [peerPods(false)] }));
    const early = decideRotation(input({ now: new Date(t1.getTime() + 23 * H), desired: B, ...s, consumers: [peerPods(true)] }));
    expect(early.rvps).toBeUndefined();
    const late = decideRotation(input({ now: new Date(t1.getTime() + 24 * H), desired: B, ...s, consumers: [peerPods(true)] }));
    expect(late.rvps?.why).toEqual(['removed sha256:aaa (overlap time over)']);
  });

  it('never removes an old value in a run that still has initdata to write, even after the overlap time', () => {
    const first = applied(input({}));
    const s = applied(input({ now: new Date(T0.getTime() + H), desired: B, ...first }));
    const d = decideRotation(input({ now: new Date(T0.getTime() + 100 * H), desired: B, ...s, consumers: [deployment(false)] }));
    expect(d.update).toEqual(['Deployment/zeta/pep']);
    expect(d.rvps).toBeUndefined();
  });

  it('nothing to do when converged; the expiration is refreshed refreshDays before it lapses', () => {
    const s = applied(input({ consumers: [deployment(true, true)] }));
    expect(decideRotation(input({ now: new Date(T0.getTime() + 300 * DAY), ...s, consumers: [deployment(true, true)] })).rvps).toBeUndefined();
    const late = new Date(T0.getTime() + 336 * DAY);
    const d = decideRotation(input({ now: late, ...s, consumers: [deployment(true, true)] }));
    expect(d.rvps?.why).toEqual(['expiration 2027-12-01T10:00:00Z refreshed']);
    expect(JSON.parse(d.rvps!.set.get('pcr08')!).expiration).toBe(rvpsTime(new Date(late.getTime() + 365 * DAY)));
    expect(d.update).toEqual([]);
  });

  it('an entry of ours edited by someone else is a conflict (nothing written); --force-conflicts takes it over and keeps its values overlapping', () => {
    const s = applied(input({ consumers: [deployment(true, true)] }));
    const edited = new Map(s.live);
    edited.set('pcr08', { raw: { name: 'pcr08', expiration: '2030-01-01T00:00:00Z', 'hash-value': [{ alg: 'sha256', value: 'e'.repeat(64) }] }, count: 1 });
    const d = decideRotation(input({ state: s.state, live: edited, consumers: [deployment(true, true)] }));
    expect(d.conflicts).toEqual([`entry pcr08 was changed by someone else (it lists ${'e'.repeat(64)})`]);
    expect(d.rvps).toBeUndefined();
    const forced = decideRotation(input({ state: s.state, live: edited, consumers: [deployment(true, true)], force: true }));
    expect(forced.drift).toEqual(['pcr08: changed by someone else, taken over']);
    expect(entryValues(JSON.parse(forced.rvps!.set.get('pcr08')!))).toEqual([A.values.pcr08, 'e'.repeat(64)]);
  });

  it('a foreign pcr08 entry (the hand-made one) is not adopted without --force-conflicts; key order alone is no edit', () => {
    const live = new Map([['pcr08', { raw: { name: 'pcr08', expiration: '2027-01-01T00:00:00Z', value: ['c'.repeat(64)] }, count: 1 }]]);
    expect(decideRotation(input({ live })).conflicts).toEqual(['entry pcr08 exists and was not written by zeta-provision']);
    const adopt = decideRotation(input({ live, force: true }));
    expect(entryValues(JSON.parse(adopt.rvps!.set.get('pcr08')!))).toEqual([A.values.pcr08, 'c'.repeat(64)]);
    const s = applied(input({}));
    const reordered = JSON.parse(s.live.get('pcr08')!.raw ? JSON.stringify(s.live.get('pcr08')!.raw) : '{}');
    const flipped = Object.fromEntries(Object.entries(reordered).reverse());
    expect(decideRotation(input({ ...s, live: new Map([['pcr08', { raw: flipped, count: 1 }]]), consumers: [deployment(true, true)] })).conflicts).toEqual([]);
    expect(decideRotation(input({ ...s, live: new Map([['pcr08', { raw: flipped, count: 2 }]]) })).conflicts).toEqual(['2 entries are named pcr08']);
  });

  it('an entry of ours deleted by someone is re-added (drift), old overlapping values included', () => {
    const first = applied(input({}));
    const s = applied(input({ now: new Date(T0.getTime() + H), desired: B, ...first }));
    const d = decideRotation(input({ now: new Date(T0.getTime() + 2 * H), desired: B, state: s.state, live: new Map(), consumers: [deployment(true, false)] }));
    expect(d.drift).toEqual(['pcr08: deleted']);
    expect(entryValues(JSON.parse(d.rvps!.set.get('pcr08')!))).toEqual([B.values.pcr08, A.values.pcr08]);
  });

  it('refuses an overlap list longer than the bound instead of growing the state without end', () => {
    let s = applied(input({ consumers: [peerPods(false)] }));
    for (let i = 0; i < 32; i++)
      s = applied(
        input({
          now: new Date(T0.getTime() + (i + 1) * 60_000),
          desired: { id: `sha256:${i}`, values: { pcr08: i.toString(16).padStart(64, '0') } },
          ...s,
          consumers: [peerPods(false)],
        }),
      );
    const d = decideRotation(input({ now: new Date(T0.getTime() + 40 * 60_000), desired: B, ...s, consumers: [peerPods(false)] }));
    expect(d.conflicts).toEqual(['33 replaced initdata values would overlap (at most 32); let rollouts finish or lower overlapHours']);
  });

  it('the value format of older guides: {"value": [...]}', () => {
    const d = decideRotation(input({ format: 'value' }));
    expect(JSON.parse(d.rvps!.set.get('pcr08')!)).toEqual({ name: 'pcr08', expiration: '2027-12-01T10:00:00Z', value: [A.values.pcr08] });
  });
});

describe('reference-values.json edits', () => {
  const FOREIGN = '{ "name" : "pcr03", "expiration":"2027-01-01T00:00:00Z", "hash-value":[{"alg":"sha256","value":"03"}], "n": 1.0e0, "u": "\\u00e9" }';
  const FOREIGN2 = '{"name":"pcr09","value":["09"],"name2":"x","dup":1,"dup":2}';
  const ours = (v: string) => JSON.stringify({ name: 'pcr08', expiration: '2027-12-01T10:00:00Z', 'hash-value': [{ alg: 'sha256', value: v }] });

  it('keeps every foreign entry byte for byte while ours is added, replaced and removed', () => {
    const original = `[\n    ${FOREIGN},\n    ${FOREIGN2}\n]\n`;
    const added = spliceReferenceValues(scanReferenceValues(original, 'rv'), new Map([['pcr08', ours('aa')]]));
    expect(added).toBe(`[\n    ${FOREIGN},\n    ${FOREIGN2},\n    ${ours('aa')}\n]\n`);
    const replaced = spliceReferenceValues(scanReferenceValues(added, 'rv'), new Map([['pcr08', ours('bb')]]));
    expect(replaced).toBe(`[\n    ${FOREIGN},\n    ${FOREIGN2},\n    ${ours('bb')}\n]\n`);
    const removed = spliceReferenceValues(scanReferenceValues(replaced, 'rv'), new Map([['pcr08', undefined]]));
    expect(removed).toBe(original);
    // Ours first: its removal takes the following comma, the next entry moves up.
    const first = `[${ours('aa')}, ${FOREIGN}]`;
    expect(spliceReferenceValues(scanReferenceValues(first, 'rv'), new Map([['pcr08', undefined]]))).toBe(`[${FOREIGN}]`);
    expect(JSON.parse(added)).toHaveLength(3);
  });

  it('an empty or absent list gets our entry; duplicates of our name collapse into one', () => {
    expect(spliceReferenceValues(scanReferenceValues('[\n]\n', 'rv'), new Map([['pcr08', ours('aa')]]))).toBe(`[\n  ${ours('aa')}\n]\n`);
    expect(JSON.parse(spliceReferenceValues(scanReferenceValues('', 'rv'), new Map([['pcr08', ours('aa')]])))).toHaveLength(1);
    const dup = `[${ours('1')}, ${FOREIGN2}, ${ours('2')}]`;
    expect(spliceReferenceValues(scanReferenceValues(dup, 'rv'), new Map([['pcr08', ours('3')]]))).toBe(`[${ours('3')}, ${FOREIGN2}]`);
  });

  it.each([
    ['an object', '{"pcr08": []}', /not a JSON list of reference values: it is an object, not a list at offset 0/],
    ['broken JSON', '[{"name": "x",}]', /not a JSON list of reference values/],
    ['trailing text', '[] x', /text after the list/],
    ['deep nesting', '[' + '['.repeat(40) + ']'.repeat(40) + ']', /nested deeper than 32/],
    ['an unterminated string', '["abc', /unterminated string/],
  ])('refuses %s', (_n, text, message) => {
    expect(() => scanReferenceValues(text, 'rvps-reference-values/reference-values.json')).toThrow(message);
  });
});
