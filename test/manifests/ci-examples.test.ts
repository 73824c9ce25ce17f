/**
 * The README's CI examples, run as written: the GitHub Actions step script (bash -e, as Actions runs it)
 * and the GitLab script lines (one shell, as the runner does), with zeta-provision on PATH and no
 * cluster, on the example payload and on a tampered one.
 */
import { cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BIN, REPO_ROOT } from '../support/cli.js';
import { digestOf } from '../support/oci-push.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();

async function readmeBlock(heading: string): Promise<unknown> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(heading);
  expect(start, heading).toBeGreaterThan(0);
  const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(start))!;
  return parse(block[1]!);
}

async function githubScript(): Promise<string> {
  const workflow = (await readmeBlock('GitHub Actions, on the OCI layout')) as { jobs: Record<string, { steps: { run?: string; uses?: string }[] }> };
  const job = Object.values(workflow.jobs)[0]!;
  // The report is kept as an artifact whatever the outcome.
  expect(job.steps).toContainEqual({ uses: 'actions/upload-artifact@v4', if: 'always()', with: { name: 'verify-report', path: 'report.json' } });
  const steps = job.steps.filter((s) => s.run);
  expect(steps).toHaveLength(1);
  return steps[0]!.run!;
}

async function gitlabScript(): Promise<string> {
  const pipeline = (await readmeBlock('GitLab CI:')) as Record<string, { script: string[]; artifacts: unknown }>;
  expect(pipeline['verify-payload']!.artifacts).toEqual({ when: 'always', paths: ['report.json'] });
  return pipeline['verify-payload']!.script.join('\n');
}

/** A CI checkout: ci/zeta-provision.yaml (+ its trust files) and the freshly built layout in build/payload. */
async function workspace(): Promise<string> {
  const dir = await tempDir();
  const example = path.join(REPO_ROOT, 'fixtures', 'example');
  await mkdir(path.join(dir, 'ci'));
  await cp(path.join(example, 'zeta-provision.yaml'), path.join(dir, 'ci', 'zeta-provision.yaml'));
  await cp(path.join(example, 'trust'), path.join(dir, 'ci', 'trust'), { recursive: true });
  await cp(path.join(example, 'oci'), path.join(dir, 'build', 'payload'), { recursive: true });
  await mkdir(path.join(dir, 'bin'));
  await symlink(BIN, path.join(dir, 'bin', 'zeta-provision'));
  return dir;
}

/** Points the layout's tag at another image (an extra label) that carries the original's signature. */
async function tamper(layout: string): Promise<void> {
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'));
  const ref = (m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] ?? '';
  const image = index.manifests.find((m: { annotations?: Record<string, string> }) => ref(m) === 'latest');
  const sig = index.manifests.find((m: { annotations?: Record<string, string> }) => ref(m).endsWith('.sig'));
  const blob = (d: string) => path.join(layout, 'blobs', 'sha256', d.slice(7));
  const manifest = JSON.parse(await readFile(blob(image.digest), 'utf8'));
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8'));
  config.config.Labels['org.example.tampered'] = 'yes';
  const configBytes = Buffer.from(JSON.stringify(config));
  await writeFile(blob(digestOf(configBytes)), configBytes);
  manifest.config = { ...manifest.config, digest: digestOf(configBytes), size: configBytes.length };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const evil = digestOf(manifestBytes);
  await writeFile(blob(evil), manifestBytes);
  index.manifests = [
    { ...image, digest: evil, size: manifestBytes.length },
    { ...sig, annotations: { 'org.opencontainers.image.ref.name': `sha256-${evil.slice(7)}.sig` } },
  ];
  await writeFile(path.join(layout, 'index.json'), JSON.stringify(index));
}

async function runScript(shellArgs: string[], script: string, cwd: string) {
  // No KUBECONFIG, no in-cluster variables: CI has no cluster.
  const env = { PATH: `${path.join(cwd, 'bin')}:${process.env.PATH}`, HOME: cwd };
  const r = await execa('bash', [...shellArgs, '-c', script], { cwd, env, extendEnv: false, reject: false });
  return { exitCode: r.exitCode, stdout: String(r.stdout), report: JSON.parse(await readFile(path.join(cwd, 'report.json'), 'utf8')) };
}

describe.each([
  ['GitHub Actions', ['-e'], githubScript, '::error::payload verification failed (exit 3), see the verify-report artifact'],
  ['GitLab CI', ['-e', '-o', 'pipefail'], gitlabScript, 'payload verification failed (exit 3), see report.json'],
] as const)('README %s example', (_name, shellArgs, script, failureLine) => {
  it('passes a correctly signed payload with no cluster, and fails the pipeline with exit 3 on a tampered one', async () => {
    const text = await script();
    // The gate is verify with a JSON report, as the README says.
    expect(text).toMatch(/zeta-provision verify .* -o json > report\.json/);

    const good = await workspace();
    const ok = await runScript([...shellArgs], text, good);
    expect(ok.exitCode, ok.stdout).toBe(0);
    expect(ok.report).toMatchObject({
      apiVersion: 'zeta-provision/v1',
      kind: 'VerifyReport',
      outcome: 'verified',
      exitCode: 0,
      image: { checked: true },
      error: null,
    });
    expect(ok.report.verification.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
    expect(ok.stdout).not.toContain(failureLine);

    const bad = await workspace();
    await tamper(path.join(bad, 'build', 'payload'));
    const failed = await runScript([...shellArgs], text, bad);
    expect(failed.exitCode).toBe(3);
    expect(failed.stdout).toContain(failureLine);
    expect(failed.report).toMatchObject({ kind: 'VerifyReport', outcome: 'failed', exitCode: 3 });
    expect(failed.report.error.message).toMatch(/image signature/);
  });
});
