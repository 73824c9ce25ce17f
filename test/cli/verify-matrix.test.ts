/**
 * `verify` judges exactly what `run --dry-run` judges: both commands over a matrix of good and bad
 * payloads (the bundled example, tampered copies, gematik's real test payload and altered copies of
 * it), asserting the same outcome, exit code and error for each. The CLI is the built binary.
 */
import { existsSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(REPO_ROOT, '..', 'shared', 'realworld');
const REAL = path.join(REALWORLD, 'gematik-test');
const TSL = 'ECC-RSA_TSL-test.xml';

interface Case {
  name: string;
  /** Builds the payload (in a temp dir) and returns the arguments both commands get. */
  args: (dir: string) => Promise<string[]>;
  env?: Record<string, string>;
  exit: number;
  error?: RegExp;
}

async function example(dir: string): Promise<{ config: string; payload: string }> {
  await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(dir, 'example'), { recursive: true });
  return { config: path.join(dir, 'example', 'zeta-provision.yaml'), payload: path.join(dir, 'example', 'payload') };
}

async function gematik(dir: string, edit?: (payload: string) => Promise<void>): Promise<string> {
  const payload = path.join(dir, 'gematik');
  await cp(REAL, payload, { recursive: true });
  await edit?.(payload);
  return `dir:${payload}`;
}

const replaceIn = async (file: string, from: string | RegExp, to: string) => {
  const text = await readFile(file, 'utf8');
  const next = text.replace(from, to);
  expect(next, `${file}: nothing replaced`).not.toBe(text);
  await writeFile(file, next);
};

const CASES: Case[] = [
  { name: 'example image: good', args: async (d) => ['--config', (await example(d)).config], exit: 0 },
  {
    name: 'example payload: a signed file altered',
    args: async (d) => {
      const ex = await example(d);
      await replaceIn(path.join(ex.payload, 'nginx', 'nginx.conf'), /$/, '\n# altered\n');
      return ['--config', ex.config, '--source', `dir:${ex.payload}`, '--image-signature', 'off'];
    },
    exit: 3,
    error: /nginx\/nginx\.conf: content digest does not match/,
  },
  {
    name: 'missing source',
    args: async (d) => ['--config', (await example(d)).config, '--source', `dir:${path.join(d, 'nope')}`],
    exit: 4,
    error: /source not found/,
  },
];

const REAL_CASES: Case[] = [
  {
    name: 'unknown trust set for the TSL',
    args: async (d) => ['--profile', 'gematik', '--source', await gematik(d), '--tsl-trust', 'acme'],
    exit: 2,
    error: /--tsl-trust: unknown trust set "acme"/,
  },
  // The shipped production roots do not anchor gematik's TEST-ONLY TSL signer.
  {
    name: 'gematik test payload, default (production GEM.RCA)',
    args: async (d) => ['--profile', 'gematik', '--source', await gematik(d)],
    exit: 3,
    error: /no path from the TSL signer "CN=TSL Signing Unit 12 TEST-ONLY.*to a trusted GEM root \(trust set gematik-rca\)/,
  },
  // Anchored to the TEST-ONLY roots the chain holds (signer → GEM.TSL-CA28 from the list → GEM.RCA4), and the
  // signed document is found altered: the stored copy's digest differs (xmlsec1 agrees, see the README).
  {
    name: 'gematik test payload, test roots',
    args: async (d) => ['--profile', 'gematik', '--source', await gematik(d), '--tsl-trust', 'gematik-rca-test', '--tsl-grace-days', '3650'],
    exit: 3,
    error: /the TSL was altered after signing: digest of the signed document differs/,
  },
  {
    name: 'gematik: forged NextUpdate, test roots',
    args: async (d) => [
      '--profile',
      'gematik',
      '--tsl-trust',
      'gematik-rca-test',
      '--source',
      await gematik(d, (p) => replaceIn(path.join(p, TSL), '2026-07-13T23:00:13Z', '2099-07-13T23:00:13Z')),
    ],
    exit: 3,
    error: /the TSL was altered after signing/,
  },
  {
    name: 'gematik: signature off, TSL 142 days past NextUpdate',
    args: async (d) => ['--profile', 'gematik', '--source', await gematik(d), '--tsl-signature', 'off'],
    exit: 3,
    error: /TSL expired: NextUpdate was 2026-07-13/,
  },
  {
    name: 'gematik: signature off, grace 3650 days (env twins)',
    args: async (d) => ['--source', await gematik(d)],
    env: { ZETA_PROVISION_PROFILE: 'gematik', ZETA_PROVISION_TSL_SIGNATURE: 'off', ZETA_PROVISION_TSL_GRACE_DAYS: '3650' },
    exit: 0,
  },
  {
    name: 'gematik: roots.json cross-certificate damaged',
    args: async (d) => {
      const src = await gematik(d, async (p) => {
        const roots = JSON.parse(await readFile(path.join(p, 'roots.json'), 'utf8'));
        roots[3].next = roots[4].next;
        await writeFile(path.join(p, 'roots.json'), JSON.stringify(roots));
      });
      return ['--profile', 'gematik', '--source', src, '--tsl-signature', 'off', '--tsl-grace-days', '3650'];
    },
    exit: 3,
    error: /roots\.json/,
  },
  {
    name: 'gematik: policy signer replaced by a certificate outside its CA',
    args: async (d) => {
      const src = await gematik(d, async (p) => {
        const signer = path.join(p, 'policy-engine-bundle-keys', 'signers', 'zeta-policy-freigeber-komp61.pem');
        await cp(path.join(p, 'apple-roots', 'apple-root.pem'), signer);
      });
      return ['--profile', 'gematik', '--source', src, '--tsl-signature', 'off', '--tsl-grace-days', '3650'];
    },
    exit: 3,
    error: /policy-engine-bundle-keys/,
  },
  {
    name: 'gematik: TrustedTpm.cab altered',
    args: async (d) => {
      const src = await gematik(d, async (p) => {
        const cab = await readFile(path.join(p, 'TrustedTpm.cab'));
        cab[cab.length >> 1] = cab[cab.length >> 1]! ^ 0xff;
        await writeFile(path.join(p, 'TrustedTpm.cab'), cab);
      });
      return ['--profile', 'gematik', '--source', src, '--tsl-signature', 'off', '--tsl-grace-days', '3650'];
    },
    exit: 3,
    error: /TrustedTpm\.cab/,
  },
];

async function both(c: Case) {
  const dir = await tempDir();
  const args = await c.args(dir);
  const verify = await runCli(['verify', ...args, '-o', 'json'], { env: c.env });
  const dry = await runCli(['run', ...args, '--dry-run', '-o', 'json'], { env: c.env });
  return { verify, dry };
}

const doc = (stdout: string) => (stdout.trim() === '' ? undefined : (JSON.parse(stdout) as { outcome: string; error: { message: string } | null }));

async function agree(c: Case): Promise<void> {
  const { verify, dry } = await both(c);
  expect(verify.exitCode, verify.stdout + verify.stderr).toBe(c.exit);
  expect(dry.exitCode, dry.stdout + dry.stderr).toBe(c.exit);
  const v = doc(verify.stdout);
  const r = doc(dry.stdout);
  // Usage errors stop before a report; otherwise the verdict and the error are the same.
  expect(v?.error?.message).toEqual(r?.error?.message);
  expect(v?.outcome === 'verified').toBe(r?.outcome === 'dry-run');
  const lastLog = JSON.parse(verify.stderr.trim().split('\n').pop()!) as { msg: string };
  expect(v?.error?.message ?? lastLog.msg).toMatch(c.error ?? /.*/);
}

describe.each(CASES)('verify and run --dry-run agree: $name', (c) => {
  it(`both exit ${c.exit}`, () => agree(c), 120_000);
});

describe.skipIf(!existsSync(REAL))("on gematik's real test payload (shared/realworld)", () => {
  describe.each(REAL_CASES)('verify and run --dry-run agree: $name', (c) => {
    it(`both exit ${c.exit}`, () => agree(c), 120_000);
  });
});
