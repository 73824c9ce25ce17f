/**
 * The process stage's size check agrees with the API's rule (decoded bytes of binaryData count, not
 * their base64) on both sides of the 1 MiB boundary, and plan and report label a Secret target as a
 * Secret. The API double enforces the real API's limit, so "accepted" means the object was stored.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfigMap, CONFIGMAP_MAX_BYTES } from '../../src/process/index.js';
import { buildDesiredObject, MAX_OBJECT_DATA_BYTES } from '../../src/publish/kube/objects.js';
import { PublishError } from '../../src/errors.js';
import { runCli } from '../support/cli.js';
import { NS, writeConfig, writeKubeconfig, writePayload, writes } from '../support/kube-api/cluster.js';
import { startKubeApi, type KubeApi } from '../support/kube-api/index.js';
import { useTempDirs } from '../support/tmp.js';

const MiB = 1024 * 1024;
const tempDir = useTempDirs();
let api: KubeApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

/** Binary (a NUL in it, so it goes to binaryData) of exactly n bytes. */
const binary = (n: number): Buffer => Buffer.alloc(n, 0xab).fill(0, 0, 1);

async function setup(config: string, files: Record<string, string | Buffer>) {
  api = await startKubeApi({
    rbac: {
      [NS]: [
        { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['list', 'create', 'get', 'patch'] },
        { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      ],
    },
  });
  const dir = await tempDir();
  const payload = await writePayload(dir, files);
  const cfg = await writeConfig(dir, config);
  const kubeconfig = await writeKubeconfig(dir, api.url, { namespace: NS });
  return (extra: string[] = ['--output', 'json']) => runCli(['run', '--config', cfg, '--source', `dir:${payload}`, '--kubeconfig', kubeconfig, ...extra]);
}

describe('ConfigMap size: the process stage counts what the API counts', () => {
  it('one limit on both sides', () => {
    expect(CONFIGMAP_MAX_BYTES).toBe(MAX_OBJECT_DATA_BYTES);
    expect(CONFIGMAP_MAX_BYTES).toBe(MiB);
  });

  it.each([
    ['800 KiB (base64 over 1 MiB)', 800 * 1024, true],
    ['exactly 1 MiB', MiB, true],
    ['1 MiB + 1 byte', MiB + 1, false],
  ])('binary file of %s: process stage and kube publisher agree (%s)', (_label, size, fits) => {
    const contents = [{ key: 'blob.bin', path: 'blob.bin', bytes: binary(size) }];
    if (!fits) {
      expect(() => buildConfigMap('big', NS, contents)).toThrow(PublishError);
      expect(() => buildConfigMap('big', NS, contents)).toThrow(`ConfigMap big would hold ${size} bytes, over the API limit of ${MiB} (blob.bin ${size} B)`);
      return;
    }
    const cm = buildConfigMap('big', NS, contents);
    expect(cm.bytes).toBe(size);
    expect(Buffer.from(cm.binaryData['blob.bin']!, 'base64').length).toBe(size);
    const spec = { kind: 'ConfigMap' as const, name: 'big', files: [{ key: 'blob.bin', path: 'blob.bin' }], consumers: [] };
    expect(() => buildDesiredObject(cm, spec, NS, 'zeta-provision', { source: 's', digest: 'sha256:' + '0'.repeat(64) })).not.toThrow();
  });

  it('text and binary together count by their decoded bytes', () => {
    const text = Buffer.from('a'.repeat(MiB - 10));
    expect(
      buildConfigMap('mix', NS, [
        { key: 't.txt', path: 't.txt', bytes: text },
        { key: 'b.bin', path: 'b.bin', bytes: binary(10) },
      ]).bytes,
    ).toBe(MiB);
    expect(() =>
      buildConfigMap('mix', NS, [
        { key: 't.txt', path: 't.txt', bytes: text },
        { key: 'b.bin', path: 'b.bin', bytes: binary(11) },
      ]),
    ).toThrow(`ConfigMap mix would hold ${MiB + 1} bytes`);
  });

  it('a 1 MiB binary file is stored by the API; 1 MiB + 1 is refused before any write', async () => {
    const config = 'configMaps:\n  - name: blob\n    files: [blob.bin]\n';
    const ok = await setup(config, { 'blob.bin': binary(MiB) });
    const r = await ok();
    expect(r.exitCode, r.stdout).toBe(0);
    const stored = api!.store.peek(api!.type('configmaps'), NS, 'blob')!;
    expect(Buffer.from(stored.binaryData['blob.bin'], 'base64')).toEqual(binary(MiB));
    expect(JSON.parse(r.stdout).plan.configMaps).toEqual([{ kind: 'ConfigMap', name: 'blob', action: 'create', keys: ['blob.bin'], bytes: MiB }]);
    await api!.stop();

    const over = await setup(config, { 'blob.bin': binary(MiB + 1) });
    const refused = await over();
    expect(refused.exitCode).toBe(5);
    expect(JSON.parse(refused.stdout).error.message).toContain(`ConfigMap blob would hold ${MiB + 1} bytes, over the API limit of ${MiB}`);
    expect(writes(api!).filter((w) => w.resource !== 'events' && w.name !== 'zeta-provision-status')).toEqual([]);
  });
});

describe('a Secret target is labelled as a Secret', () => {
  it('in the plan (JSON), the text report and the size error', async () => {
    const config = 'configMaps:\n  - name: pep-credentials\n    files:\n      - { path: client.secret, sensitive: true }\n      - client.id\n';
    const run = await setup(config, { 'client.secret': 's3cr3t-value\n', 'client.id': 'pep\n' });
    const json = await run(['--output', 'json', '--dry-run']);
    expect(json.exitCode, json.stdout).toBe(0);
    expect(JSON.parse(json.stdout).plan.configMaps).toEqual([
      { kind: 'Secret', name: 'pep-credentials', action: 'create', keys: ['client.id', 'client.secret'], bytes: 17 },
    ]);
    const text = await run(['--output', 'text']);
    expect(text.exitCode, text.stdout).toBe(0);
    expect(text.stdout).toContain('\n  secret    pep-credentials: create (client.id, client.secret; 17 bytes)\n');
    expect(text.stdout).not.toContain('configmap pep-credentials');
    expect(text.stdout).not.toContain('s3cr3t');
    expect(api!.store.peek(api!.type('secrets'), NS, 'pep-credentials')).toBeTruthy();

    expect(() => buildConfigMap('pep-credentials', NS, [{ key: 'k', path: 'k', bytes: binary(MiB + 1) }], 'Secret')).toThrow(
      `Secret pep-credentials would hold ${MiB + 1} bytes`,
    );
  });
});
