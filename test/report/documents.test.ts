/**
 * The versioned documents on stdout (apiVersion zeta-provision/v1), produced by the built binary in
 * every outcome and validated against the JSON Schemas in schemas/ with ajv: RunReport (applied,
 * no-changes, up-to-date, dry-run, failed), VerifyReport (verified, failed), VolumeStatus (empty and
 * populated volume), VolumeRollback. Also: every top-level field is present (null when not reached),
 * and -o yaml carries the same document.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const ajv = new Ajv2020({ allErrors: true, strict: true });
const schema = async (name: string) => ajv.compile(JSON.parse(await readFile(path.join(REPO_ROOT, 'schemas', `${name}.schema.json`), 'utf8')));
const validators = {
  RunReport: await schema('run-report'),
  VerifyReport: await schema('verify-report'),
  VolumeStatus: await schema('volume-status'),
  VolumeRollback: await schema('volume-rollback'),
};
const RUN_FIELDS = [
  'apiVersion',
  'kind',
  'command',
  'outcome',
  'exitCode',
  'dryRun',
  'source',
  'targets',
  'image',
  'verification',
  'processed',
  'freshness',
  'initdata',
  'plan',
  'published',
  'warnings',
  'error',
  'durationMs',
];
const VERIFY_FIELDS = [
  'apiVersion',
  'kind',
  'command',
  'outcome',
  'exitCode',
  'source',
  'image',
  'verification',
  'processed',
  'freshness',
  'initdata',
  'warnings',
  'error',
  'durationMs',
];

function expectValid(doc: Record<string, unknown>): void {
  const validate = validators[doc.kind as keyof typeof validators];
  expect(validate, `kind ${String(doc.kind)}`).toBeDefined();
  expect(validate!(doc), JSON.stringify(validate!.errors, null, 1)).toBe(true);
}

async function example() {
  const dir = await tempDir();
  await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(dir, 'example'), { recursive: true });
  const config = path.join(dir, 'example', 'zeta-provision.yaml');
  return { dir, config, volume: path.join(dir, 'volume'), kubeOut: path.join(dir, 'kube'), payload: path.join(dir, 'example', 'payload') };
}

async function json(args: string[]) {
  const r = await runCli([...args, '-o', 'json']);
  return { ...r, doc: (r.stdout.trim() === '' ? {} : JSON.parse(r.stdout)) as Record<string, unknown> };
}

describe('versioned report documents', () => {
  it('RunReport in every outcome of run validates against its schema, with every field present', async () => {
    const ex = await example();
    const base = ['run', '--config', ex.config, '--volume', ex.volume, '--kube-out', ex.kubeOut];
    const outcomes: Record<string, Record<string, unknown>> = {};
    const dry = await json([...base, '--dry-run']);
    outcomes[String(dry.doc.outcome)] = dry.doc;
    const applied = await json(base);
    expect(applied.exitCode, applied.stderr).toBe(0);
    outcomes[String(applied.doc.outcome)] = applied.doc;
    const upToDate = await json(base);
    outcomes[String(upToDate.doc.outcome)] = upToDate.doc;
    const forced = await json([...base, '--force']);
    outcomes[String(forced.doc.outcome)] = forced.doc;
    const failed = await json(['run', '--config', ex.config, '--source', 'dir:/nonexistent', '--volume', ex.volume, '--kube-out', ex.kubeOut]);
    outcomes[String(failed.doc.outcome)] = failed.doc;
    expect(Object.keys(outcomes).sort()).toEqual(['applied', 'dry-run', 'failed', 'no-changes', 'up-to-date']);
    for (const [outcome, doc] of Object.entries(outcomes)) {
      expect(Object.keys(doc), outcome).toEqual(RUN_FIELDS);
      expect(doc).toMatchObject({ apiVersion: 'zeta-provision/v1', kind: 'RunReport' });
      expectValid(doc);
    }
    // Not reached is null, not absent: an up-to-date run verified nothing and planned nothing.
    expect(outcomes['up-to-date']).toMatchObject({ image: null, verification: null, plan: null, published: null, error: null });
    expect(outcomes.failed).toMatchObject({ exitCode: 4, image: null, error: { kind: 'source', hint: null, file: null } });
  }, 120_000);

  it('VerifyReport (verified and failed) validates; -o yaml is the same document', async () => {
    const ex = await example();
    const ok = await json(['verify', '--config', ex.config]);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(Object.keys(ok.doc)).toEqual(VERIFY_FIELDS);
    expectValid(ok.doc);
    const yaml = await runCli(['verify', '--config', ex.config, '-o', 'yaml']);
    const fromYaml = parse(yaml.stdout) as Record<string, unknown>;
    expect({ ...fromYaml, durationMs: 0 }).toEqual({ ...ok.doc, durationMs: 0 });

    const conf = path.join(ex.payload, 'nginx', 'nginx.conf');
    await writeFile(conf, (await readFile(conf, 'utf8')) + '# tampered\n');
    const tampered = await json(['verify', '--config', ex.config, '--source', `dir:${ex.payload}`, '--image-signature', 'off']);
    expect(tampered.exitCode).toBe(3);
    expect(tampered.doc).toMatchObject({ outcome: 'failed', error: { kind: 'verify', file: 'nginx/nginx.conf' }, processed: null });
    expectValid(tampered.doc);
    const missing = await json(['verify', '--config', ex.config, '--source', `dir:${path.join(ex.dir, 'nope')}`, '--image-signature', 'off']);
    expect(missing.exitCode).toBe(4);
    expect(missing.doc).toMatchObject({ kind: 'VerifyReport', outcome: 'failed', verification: null, processed: null });
    expectValid(missing.doc);
  }, 120_000);

  it('VolumeStatus before and after a publish, and VolumeRollback, validate', async () => {
    const ex = await example();
    const { mkdir } = await import('node:fs/promises');
    await mkdir(ex.volume);
    const empty = await json(['status', '--volume', ex.volume]);
    expect(empty.exitCode, empty.stderr).toBe(0);
    expect(empty.doc).toMatchObject({ apiVersion: 'zeta-provision/v1', kind: 'VolumeStatus', current: null, lastApplied: null, freshness: null });
    expectValid(empty.doc);
    const base = ['run', '--config', ex.config, '--volume', ex.volume, '--kube-out', ex.kubeOut];
    expect((await runCli(base)).exitCode).toBe(0);
    // Nothing to roll back to yet: a usage error (exit 2), not a failed write.
    const early = await runCli(['rollback', '--config', ex.config, '--volume', ex.volume, '--kube-out', ex.kubeOut]);
    expect(early.exitCode, early.stderr).toBe(2);
    expect(early.stderr).toContain('keeps no previous payload');
    // A second config publishing fewer files makes a second generation.
    const narrower = path.join(path.dirname(ex.config), 'narrow.yaml');
    await writeFile(narrower, (await readFile(ex.config, 'utf8')).replace('files: ["keycloak-data/**"]', 'files: ["keycloak-data/realm-zeta.json"]'));
    const second = await runCli(['run', '--config', narrower, '--volume', ex.volume, '--kube-out', ex.kubeOut]);
    expect(second.exitCode, second.stdout).toBe(0);
    const full = await json(['status', '--volume', ex.volume]);
    expectValid(full.doc);
    expect((full.doc.generations as unknown[]).length).toBe(2);
    // Every target the payload went to moves back together, so rollback takes the run's target options.
    const rolled = await json(['rollback', '--config', narrower, '--volume', ex.volume, '--kube-out', ex.kubeOut]);
    expect(rolled.exitCode, rolled.stderr).toBe(0);
    expect(rolled.doc).toMatchObject({ apiVersion: 'zeta-provision/v1', kind: 'VolumeRollback', to: full.doc.previous });
    expectValid(rolled.doc);
    // A volume that is not there: exit 4 for both, naming the flag.
    for (const cmd of ['status', 'rollback']) {
      const gone = await runCli([cmd, '--volume', path.join(ex.dir, 'missing'), '--log-format', 'json']);
      expect(gone.exitCode, gone.stderr).toBe(4);
      expect(JSON.parse(gone.stderr.trim().split('\n').pop()!)).toMatchObject({
        level: 'error',
        code: 4,
        kind: 'source',
        hint: expect.stringContaining('--volume'),
      });
    }
  }, 120_000);
});
