import { describe, expect, it } from 'vitest';
import { makePlan } from '../../src/plan/index.js';
import type { DesiredOutputs } from '../../src/process/types.js';

const desired = (files: Record<string, string>, cms: Record<string, string> = {}): DesiredOutputs => ({
  volumeFiles: Object.entries(files).map(([p, sha]) => ({ path: p, source: '/s/' + p, size: 10, sha256: sha })),
  configMaps: Object.entries(cms).map(([name, contentHash]) => ({
    kind: 'ConfigMap' as const,
    name,
    data: { k: 'v' },
    binaryData: {},
    contentHash,
    files: ['f'],
    bytes: 1,
  })),
  warnings: [],
});

describe('plan', () => {
  it('nothing to do when volume and ConfigMaps match', () => {
    const p = makePlan(desired({ a: '1', b: '2' }, { cm: 'h' }), {
      volume: new Map([
        ['a', '1'],
        ['b', '2'],
      ]),
      configMaps: new Map([['cm', 'h']]),
    });
    expect(p.changes).toBe(false);
    expect(p.volume).toMatchObject({ changed: false, unchanged: 2, bytesToWrite: 0 });
    expect(p.configMaps[0]!.action).toBe('unchanged');
  });

  it('classifies added, modified and removed files', () => {
    const p = makePlan(desired({ a: '1', b: 'new', c: '3' }), {
      volume: new Map([
        ['a', '1'],
        ['b', 'old'],
        ['gone', 'x'],
      ]),
      configMaps: new Map(),
    });
    expect(p.volume).toMatchObject({ changed: true, added: ['c'], modified: ['b'], removed: ['gone'], unchanged: 1, bytesToWrite: 20 });
    expect(p.changes).toBe(true);
  });

  it('creates missing ConfigMaps and updates ones whose content hash differs or is unknown', () => {
    const p = makePlan(desired({}, { fresh: 'h1', stale: 'h2', foreign: 'h3' }), {
      configMaps: new Map([
        ['stale', 'old'],
        ['foreign', undefined],
      ]),
    });
    expect(p.configMaps.map((c) => [c.name, c.action])).toEqual([
      ['fresh', 'create'],
      ['stale', 'update'],
      ['foreign', 'update'],
    ]);
    expect(p.volume).toBeUndefined();
  });
});
