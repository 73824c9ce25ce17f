/**
 * The payload `.manifest` (sha256sum list): gematik's real popp payload, copies of it tampered with, and
 * synthetic manifests for the path rules.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, chmod, cp, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { listedPath, parseManifest, verifyPayloadManifest } from '../../src/verify/payload-manifest.js';
import { REPO_ROOT } from '../support/cli.js';
import { useTempDirs } from '../support/tmp.js';

const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(REPO_ROOT, '..', 'shared', 'realworld');
const POPP = path.join(REALWORLD, 'gematik-popp');
const tempDir = useTempDirs();

const hex = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

/** A copy that the test may change (the real files are read-only). */
async function poppCopy(): Promise<string> {
  const dir = path.join(await tempDir(), 'payload');
  await cp(POPP, dir, { recursive: true });
  await chmod(dir, 0o755);
  return dir;
}

async function payload(files: Record<string, string>, manifest: string): Promise<string> {
  const dir = await tempDir();
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  await writeFile(path.join(dir, '.manifest'), manifest);
  return dir;
}

async function manifestError(dir: string): Promise<string> {
  const err = await verifyPayloadManifest(dir, { unlisted: 'warn' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VerifyError);
  expect((err as VerifyError).file).toBe('.manifest');
  return (err as VerifyError).message;
}

describe.skipIf(!existsSync(POPP))(`gematik-popp payload (${POPP})`, () => {
  it('verifies every listed file, ignores the self line, reports the unlisted TSL and the revision', async () => {
    const r = await verifyPayloadManifest(await poppCopy(), { unlisted: 'warn' });
    expect(r.checks.map((c) => c.file).sort()).toEqual([
      '.revision',
      'ECC-RSA_TSL-test.xml',
      'TrustedTpm.cab',
      'apple-root-ca/apple-root.pem',
      'federation-master.yaml',
      'policy-engine-bundle-keys/ca/GEM.KOMP-CA61-TEST-ONLY.pem',
      'policy-engine-bundle-keys/ca/GEM.RCA7-TEST-ONLY.pem',
      'policy-engine-bundle-keys/signers/zeta-policy-freigeber-komp61.pem',
      'roots.json',
    ]);
    expect(r.checks.every((c) => c.ok && c.kind === 'manifest')).toBe(true);
    expect(r.unlisted).toEqual(['TSL-valid-ECC-rise-cvc.xml']);
    expect(r.warnings).toEqual(['1 file is not listed in .manifest: TSL-valid-ECC-rise-cvc.xml']);
    expect(r.revision).toBe('4601178f7bf867d0f5d2e5a67dacf98bc2d2ad88');
  });

  it("policy 'error' turns the unlisted file into a failed check", async () => {
    const r = await verifyPayloadManifest(await poppCopy(), { unlisted: 'error' });
    const failed = r.checks.filter((c) => !c.ok);
    expect(failed).toEqual([
      { file: 'TSL-valid-ECC-rise-cvc.xml', kind: 'manifest', ok: false, signers: [], reason: 'TSL-valid-ECC-rise-cvc.xml: not listed in .manifest' },
    ]);
    expect(r.warnings).toEqual([]);
  });

  it('names a tampered file and a missing one', async () => {
    const dir = await poppCopy();
    const yaml = path.join(dir, 'federation-master.yaml');
    await chmod(yaml, 0o644);
    await appendFile(yaml, '#');
    const cab = path.join(dir, 'TrustedTpm.cab');
    await chmod(path.dirname(cab), 0o755);
    await (await import('node:fs/promises')).rm(cab);
    const r = await verifyPayloadManifest(dir, { unlisted: 'warn' });
    const failed = r.checks.filter((c) => !c.ok).map((c) => c.reason);
    expect(failed).toEqual([
      'TrustedTpm.cab: is listed in .manifest but missing',
      expect.stringMatching(/^federation-master\.yaml: sha256 [0-9a-f]{64} does not match d9d58360f[0-9a-f]+ in \.manifest \(file altered\)$/),
    ]);
  });
});

describe('payload manifest rules', () => {
  it('accepts both sha256sum forms and upper-case hex; ignores the self line', async () => {
    const dir = await payload({ a: 'A', 'sub/b': 'B' }, `${hex('A').toUpperCase()}  ./a\n${hex('B')} *sub/b\n${'0'.repeat(64)}  ./.manifest\n`);
    const r = await verifyPayloadManifest(dir, { unlisted: 'error' });
    expect(r.checks.map((c) => [c.file, c.ok])).toEqual([
      ['a', true],
      ['sub/b', true],
    ]);
    expect(r.unlisted).toEqual([]);
    expect(r.revision).toBeUndefined();
  });

  it.each([
    ['../outside', 'contains ".."'],
    ['./a/../../x', 'contains ".."'],
    ['/etc/passwd', 'is absolute'],
    ['a\\b', 'contains a backslash'],
    ['a//b', 'is not a plain relative path'],
    ['a\rb', 'contains a control character'],
  ])('refuses the listed path %j before touching the file system', async (name, why) => {
    expect(() => listedPath(name)).toThrow(why);
    const dir = await payload({}, `${hex('x')}  ${name}\n`);
    expect(await manifestError(dir)).toContain(why);
  });

  it('refuses malformed lines, conflicting duplicates and a missing manifest', async () => {
    expect(await manifestError(await payload({}, 'deadbeef  ./a\n'))).toMatch(/^\.manifest: line 1 is not/);
    expect(() => parseManifest(`${hex('a')}  ./a\n${hex('b')}  a\n`)).toThrow(/lists a twice with different hashes/);
    expect(parseManifest(`${hex('a')}  ./a\n${hex('a')}  a\n`).size).toBe(1);
    const dir = await tempDir();
    expect(await manifestError(dir)).toBe('.manifest: is missing from the payload');
  });

  it('refuses listed files reached through symlinks and reports unlisted symlinks', async () => {
    const outside = await tempDir();
    await writeFile(path.join(outside, 'secret'), 'S');
    const dir = await payload({ a: 'A' }, `${hex('S')}  ./link\n${hex('S')}  ./d/secret\n${hex('A')}  ./a\n`);
    await symlink(path.join(outside, 'secret'), path.join(dir, 'link'));
    await symlink(outside, path.join(dir, 'd'));
    await symlink('a', path.join(dir, 'extra'));
    const r = await verifyPayloadManifest(dir, { unlisted: 'warn' });
    expect(r.checks.map((c) => c.reason ?? 'ok')).toEqual(['link: is a symbolic link, not a file', 'd/secret: is reached through a symbolic link', 'ok']);
    expect(r.unlisted).toEqual(['d', 'extra']);
  });

  it('reports a printable revision line and warns about anything else', async () => {
    const ok = await payload({ '.revision': 'v1.2.3\r\nmore\n' }, '');
    expect((await verifyPayloadManifest(ok, { unlisted: 'warn' })).revision).toBe('v1.2.3');
    const bad = await payload({ '.revision': 'x\u001b[31m\n' }, '');
    const r = await verifyPayloadManifest(bad, { unlisted: 'warn' });
    expect(r.revision).toBeUndefined();
    expect(r.warnings).toContain('.revision first line is not 1–128 printable ASCII characters; revision not reported');
    // Unlisted .revision is reported like any other file.
    expect(r.unlisted).toEqual(['.revision']);
    const long = await payload({ '.revision': 'x'.repeat(129) }, '');
    expect((await verifyPayloadManifest(long, { unlisted: 'warn' })).revision).toBeUndefined();
  });
});
