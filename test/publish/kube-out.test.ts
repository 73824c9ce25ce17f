import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildConfigMap } from '../../src/process/index.js';
import { writeKubeOut } from '../../src/publish/kube-out.js';
import { readKubeOutState } from '../../src/publish/kube-out-target.js';
import { useTempDirs } from '../support/tmp.js';
import { requireProgram } from '../support/programs.js';

const tempDir = useTempDirs();
const meta = { source: 'oci-layout:x:latest', digest: 'sha256:' + 'a'.repeat(64), revision: 'r1' };

describe('--kube-out manifests', () => {
  it('have the shape kubectl create configmap --dry-run=client -o yaml gives, plus our metadata', async () => {
    await requireProgram('kubectl', 'kubectl (preinstalled on the node machine image)');
    const dir = await tempDir();
    const files = {
      'nginx.conf': Buffer.from('events {}\n  indented: "q"\n\ttab\n'),
      'blob.bin': Buffer.from([0, 1, 0xff, 0xfe]),
      'bom.txt': Buffer.from('\ufeffbom\n'),
    };
    for (const [k, v] of Object.entries(files)) await writeFile(path.join(dir, k), v);
    const cm = buildConfigMap(
      'nginx-config',
      'zeta',
      Object.entries(files).map(([key, bytes]) => ({ key, path: key, bytes })),
    );
    const out = path.join(dir, 'out');
    await writeKubeOut(out, [cm], meta);
    const ours = parse(await readFile(path.join(out, 'configmap-nginx-config.yaml'), 'utf8'));
    const { stdout } = await execa(
      'kubectl',
      ['create', 'configmap', 'nginx-config', '-n', 'zeta', ...Object.keys(files).map((k) => `--from-file=${k}`), '--dry-run=client', '-o', 'yaml'],
      { cwd: dir },
    );
    const theirs = parse(stdout);
    expect(ours.metadata.labels['app.kubernetes.io/managed-by']).toBe('zeta-provision');
    expect(ours.metadata.annotations['zeta-provision/source-digest']).toBe(meta.digest);
    expect(ours.metadata.annotations['zeta-provision/content-hash']).toBe(cm.contentHash);
    delete ours.metadata.labels;
    delete ours.metadata.annotations;
    expect(ours).toEqual(theirs);
  });

  it('reads back the content hash of its own manifests only', async () => {
    const out = await tempDir();
    const cm = buildConfigMap('a', undefined, [{ key: 'k', path: 'k', bytes: Buffer.from('v') }]);
    await writeKubeOut(out, [cm], meta);
    await writeFile(path.join(out, 'configmap-foreign.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: foreign\n');
    await mkdir(path.join(out, 'sub'));
    const state = await readKubeOutState(out);
    expect(state.get('a')).toBe(cm.contentHash);
    expect(state.has('foreign')).toBe(true);
    expect(state.get('foreign')).toBeUndefined();
  });

  it('refuses a ConfigMap over 1 MiB and suggests the volume', () => {
    const big = Buffer.alloc(1024 * 1024 + 1, 'a');
    expect(() => buildConfigMap('big', undefined, [{ key: 'k', path: 'data/big.txt', bytes: big }])).toThrowError(
      /ConfigMap big would hold 1048577 bytes.*data\/big\.txt 1048577 B/,
    );
  });
});
