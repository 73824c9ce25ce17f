/** Pure parts of convergence: the applied record's versioning, the rollback hold, and API drift from a LIST. */
import { describe, expect, it } from 'vitest';
import { buildConfigMap } from '../../src/process/index.js';
import { kubeDrift, liveDataHash, liveOf } from '../../src/publish/kube/live.js';
import { parseWorkloadRef, type TargetSpec, type WorkloadRef } from '../../src/publish/kube/objects.js';
import { newRecord, parseStored, samePayload } from '../../src/publish/record.js';
import { appliedFromV1, volumeFromV1 } from '../../src/publish/upgrade.js';

const digest = 'sha256:' + 'a'.repeat(64);

describe('applied record', () => {
  it('a newer format is refused with the versions named; garbage counts as absent', () => {
    expect(() => parseStored('{"version":3}', 'X')).toThrow('X was written by a newer zeta-provision (record format 3; this release reads up to 2)');
    expect(parseStored('{nope', 'X')).toBeUndefined();
    expect(parseStored('{"version":"2"}', 'X')).toBeUndefined();
    expect(parseStored('{"version":1}', 'X')).toEqual({ doc: { version: 1 }, version: 1 });
  });

  it('a rollback holds: the payload it moved away from counts as applied, a new one does not', () => {
    const r = { ...newRecord({ source: 's', digest, configHash: 'c1', freshness: {} }), rollback: { fromDigest: 'sha256:new', fromConfigHash: 'c2', at: 't' } };
    expect(samePayload(r, digest, 'c1')).toBe(true);
    expect(samePayload(r, 'sha256:new', 'c2')).toBe(true);
    expect(samePayload(r, 'sha256:new', 'c3')).toBe(false);
    expect(samePayload(r, 'sha256:newer', 'c2')).toBe(false);
  });

  it('format 1 volume records become applied records per kept generation, proven time kept', () => {
    const v1 = {
      version: 1,
      source: 's',
      digest,
      configHash: 'c',
      appliedAt: 't2',
      provenTime: 'p',
      provenBasis: 'b',
      generation: 'g2',
      kept: ['g2', 'g1'],
      files: 3,
      bytes: 9,
      generations: {
        g1: { source: 's', digest: 'sha256:old', configHash: 'c', appliedAt: 't1', files: 1, bytes: 2 },
        g2: { source: 's', digest, configHash: 'c', appliedAt: 't2', files: 3, bytes: 9 },
      },
    };
    const v = volumeFromV1(v1);
    expect(v.kept).toEqual(['g2', 'g1']);
    expect(v.generations.g2).toMatchObject({
      version: 2,
      digest,
      proven: { time: 'p', basis: 'b' },
      targets: { volume: { generation: 'g2', files: 3, bytes: 9 } },
    });
    expect(v.generations.g1).toMatchObject({ digest: 'sha256:old', targets: { volume: { generation: 'g1', files: 1, bytes: 2 } } });
    expect(v.generations.g1).not.toHaveProperty('proven');
    expect(appliedFromV1({ source: 's', digest: 5 })).toBeUndefined();
  });
});

describe('API drift from the LIST', () => {
  const w = (ref: string) => parseWorkloadRef(ref) as WorkloadRef;
  const targets: TargetSpec[] = [
    { name: 'a', kind: 'ConfigMap', files: [], consumers: [w('deployment/x')] },
    { name: 'b', kind: 'ConfigMap', files: [], consumers: [] },
  ];
  const cmA = buildConfigMap('a', 'ns', [{ key: 'k', path: 'k', bytes: Buffer.from('text\n') }]);
  const cmB = buildConfigMap('b', 'ns', [{ key: 'bin', path: 'bin', bytes: Buffer.from([0, 1, 255]) }]);
  const item = (cm: typeof cmA, extra: Record<string, unknown> = {}) => ({
    metadata: {
      name: cm.name,
      labels: { 'app.kubernetes.io/managed-by': 'zeta-provision' },
      resourceVersion: '1',
      managedFields: [{ manager: 'zeta-provision' }],
      ...extra,
    },
    data: cm.data,
    binaryData: cm.binaryData,
  });

  it('hashes live data exactly as the process stage hashes the payload (text and binary)', () => {
    expect(liveDataHash('ConfigMap', item(cmA))).toBe(cmA.contentHash);
    expect(liveDataHash('ConfigMap', item(cmB))).toBe(cmB.contentHash);
    expect(liveDataHash('Secret', { data: { k: Buffer.from('text\n').toString('base64') } })).toBe(cmA.contentHash);
  });

  it('deleted, edited (with the other managers), unlabelled, and rollouts not done are drift; a match is none', () => {
    const objects = [
      { kind: 'ConfigMap' as const, name: 'a', contentHash: cmA.contentHash },
      { kind: 'ConfigMap' as const, name: 'b', contentHash: cmB.contentHash },
    ];
    const live = new Map([
      ['ConfigMap/a', liveOf('ConfigMap', item(cmA))],
      ['ConfigMap/b', liveOf('ConfigMap', item(cmB))],
    ]);
    const consumersDone = kubeDrift({ namespace: 'ns', objects, consumers: {} }, live, targets, 'ns');
    expect(consumersDone).toEqual([{ target: 'kube', object: 'deployment/x', what: 'rollout pending' }]);
    const edited = new Map(live).set(
      'ConfigMap/a',
      liveOf('ConfigMap', { ...item(cmA, { managedFields: [{ manager: 'zeta-provision' }, { manager: 'kubectl-edit' }] }), data: { k: 'other\n' } }),
    );
    edited.delete('ConfigMap/b');
    expect(kubeDrift({ namespace: 'ns', objects, consumers: {} }, edited, targets.slice(0, 2), 'ns').slice(0, 2)).toEqual([
      { target: 'kube', object: 'ConfigMap/a', what: 'data changed (field managers: kubectl-edit)' },
      { target: 'kube', object: 'ConfigMap/b', what: 'deleted' },
    ]);
    expect(kubeDrift({ namespace: 'other', objects, consumers: {} }, live, targets, 'ns')[0]!.what).toBe('the record is for namespace other');
  });
});
