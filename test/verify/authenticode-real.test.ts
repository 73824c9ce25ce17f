/**
 * Real Microsoft-signed TrustedTpm.cab files (../shared/realworld, see its PROVENANCE.md) against the
 * built-in `microsoft` trust set, cross-checked with osslsigncode; and the CLI end to end. When the
 * directory is absent the block reports itself skipped with that reason — the only skip allowed.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { VerifyError } from '../../src/errors.js';
import { verifyAuthenticodeCab } from '../../src/verify/authenticode.js';
import type { TrustAnchors } from '../../src/verify/cms.js';
import { builtinTrustDir, loadTrustSets } from '../../src/verify/index.js';
import { osslsigncodeVerify } from '../support/authenticode.js';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { requireProgram } from '../support/programs.js';

const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(REPO_ROOT, '..', 'shared', 'realworld');
const exists = existsSync(REALWORLD);
const title = (what: string): string => `${what} (${exists ? REALWORLD : `skipped: real-world directory ${REALWORLD} is absent`})`;

const REAL = [
  { file: 'gematik-test/TrustedTpm.cab', day: '2025-08-29', cn: 'Microsoft Corporation', anchor: 'Microsoft Root Certificate Authority 2011' },
  { file: 'gematik-test/trusted-tpm/TrustedTpm.cab', day: '2024-12-11', cn: 'Microsoft Corporation', anchor: 'Microsoft Root Certificate Authority 2011' },
  // The 2021 vintage is signed by "CN=Microsoft Windows, O=Microsoft Corporation" under Root 2010.
  { file: 'tpm-cab/TrustedTpm-10232021.cab', day: '2021-10-15', cn: 'Microsoft Windows', anchor: 'Microsoft Root Certificate Authority 2010' },
];

let tmp: string;
let microsoft: TrustAnchors;
let rootsPem: string;

async function ours(cab: string): Promise<{ ok: true; timestamp?: string; subject: string; anchor: string } | { ok: false; reason: string }> {
  try {
    const r = await verifyAuthenticodeCab(cab, microsoft, 'TrustedTpm.cab');
    return { ok: true, subject: r.signers[0]!.subject, anchor: r.signers[0]!.anchor, ...(r.timestamp ? { timestamp: r.timestamp } : {}) };
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    return { ok: false, reason: err.message };
  }
}

async function variant(src: string, name: string, change: (bytes: Buffer) => Buffer | void): Promise<string> {
  const bytes = await readFile(src);
  const out = path.join(tmp, name);
  await writeFile(out, change(bytes) ?? bytes);
  return out;
}

describe.skipIf(!exists)(title('real TrustedTpm.cab files'), () => {
  const real = (f: string): string => path.join(REALWORLD, f);

  beforeAll(async () => {
    await requireProgram('osslsigncode', 'osslsigncode');
    tmp = await mkdtemp(path.join(os.tmpdir(), 'zp-authenticode-real-'));
    // Through loadTrustSets, so the built-in set resolves exactly as in a run with the default config.
    const config = { trust: {}, verify: [{ files: ['TrustedTpm.cab'], kind: 'authenticode', signature: 'detached', trust: ['microsoft'], required: true }] };
    microsoft = (await loadTrustSets(config as unknown as Config)).get('microsoft')!;
    rootsPem = path.join(tmp, 'microsoft-roots.pem');
    await writeFile(
      rootsPem,
      microsoft.anchors
        .map(
          (c) =>
            `-----BEGIN CERTIFICATE-----\n${Buffer.from(c.der)
              .toString('base64')
              .replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`,
        )
        .join(''),
    );
  });

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('the built-in microsoft set is Root 2010 and Root 2011, shipped in config/trust/microsoft', () => {
    expect(builtinTrustDir('microsoft')).toBe(path.join(REPO_ROOT, 'config', 'trust', 'microsoft'));
    expect(microsoft.anchors.map((c) => c.subject.attributes.at(-1)?.text).sort()).toEqual([
      'Microsoft Root Certificate Authority 2010',
      'Microsoft Root Certificate Authority 2011',
    ]);
  });

  it.each(REAL)('$file verifies, timestamped $day, signed by $cn', async ({ file, day, cn, anchor }) => {
    const r = await ours(real(file));
    expect(r).toMatchObject({ ok: true, subject: `CN=${cn}, O=Microsoft Corporation, L=Redmond, ST=Washington, C=US` });
    if (!r.ok) return;
    expect(r.timestamp?.slice(0, 10)).toBe(day);
    expect(r.anchor).toContain(anchor);
    const oracle = await osslsigncodeVerify(real(file), rootsPem);
    expect(oracle.ok, oracle.output).toBe(true);
    expect(oracle.output).toMatch(/Timestamp Server Signature verification: ok/);
  });

  it('altered_contents.cab fails with a digest mismatch', async () => {
    const cab = real('tpm-cab/altered_contents.cab');
    expect(existsSync(cab), `${cab} is listed in PROVENANCE.md but missing`).toBe(true);
    expect(await ours(cab)).toMatchObject({ ok: false, reason: expect.stringMatching(/cabinet digest does not match/) });
    expect((await osslsigncodeVerify(cab, rootsPem)).ok).toBe(false);
  });

  it('flipping iCabinet (byte 34) keeps the signature valid; a covered header byte breaks it', async () => {
    const src = real('gematik-test/TrustedTpm.cab');
    const icab = await variant(src, 'icabinet.cab', (b) => void (b[34] = b[34]! ^ 0xff));
    expect(await ours(icab)).toMatchObject({ ok: true });
    const setId = await variant(src, 'setid.cab', (b) => void (b[32] = b[32]! ^ 0x01));
    expect(await ours(setId)).toMatchObject({ ok: false, reason: expect.stringMatching(/cabinet digest does not match/) });
  });

  it('a signature offset outside the file is a VerifyError', async () => {
    const cab = await variant(real('gematik-test/TrustedTpm.cab'), 'offset.cab', (b) => void b.writeUInt32LE(b.byteLength + 8, 44));
    await expect(verifyAuthenticodeCab(cab, microsoft, 'TrustedTpm.cab')).rejects.toThrow(/outside the file/);
  });

  it('without a valid timestamp the expired 2021 signer fails', async () => {
    // The TSA's signature value is the last thing before the zero padding; damage it.
    const cab = await variant(real('tpm-cab/TrustedTpm-10232021.cab'), 'ts-damaged.cab', (b) => {
      let end = b.byteLength - 1;
      while (b[end] === 0) end--;
      b[end - 4] = b[end - 4]! ^ 0xff;
    });
    expect(await ours(cab)).toMatchObject({ ok: false, reason: expect.stringMatching(/timestamp: .*signature/) });
    expect((await osslsigncodeVerify(cab, rootsPem)).ok).toBe(false);
  });
});

describe.skipIf(!exists)(title('zeta-provision run --dry-run on the gematik test payload'), () => {
  const source = `dir:${path.join(REALWORLD, 'gematik-test')}`;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'zp-authenticode-e2e-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  interface Report {
    exitCode: number;
    verification?: { checks: { file: string; kind: string; ok: boolean; reason?: string; signers: { subject: string }[] }[] };
  }
  const cabCheck = (report: Report) => report.verification?.checks.find((c) => c.file === 'TrustedTpm.cab');

  it('the built-in default config verifies TrustedTpm.cab with the built-in microsoft set', async () => {
    const r = await runCli(['run', '--source', source, '--dry-run', '--output', 'json']);
    const report = JSON.parse(r.stdout) as Report;
    expect(cabCheck(report), r.stdout).toMatchObject({
      kind: 'authenticode',
      ok: true,
      signers: [{ subject: expect.stringContaining('CN=Microsoft Corporation') }],
    });
  });

  it('a config with only the authenticode rule exits 0', async () => {
    const cfg = path.join(dir, 'zeta-provision.yaml');
    await writeFile(cfg, 'verify:\n  - files: TrustedTpm.cab\n    kind: authenticode\n    trust: [microsoft]\n');
    const r = await runCli(['run', '--config', cfg, '--source', source, '--dry-run', '--output', 'json']);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(cabCheck(JSON.parse(r.stdout) as Report)).toMatchObject({ ok: true });
  });

  it('a tampered TrustedTpm.cab makes the run fail with exit 3, naming the file', async () => {
    // Only the cabinet: the real payload's files are read-only, and this config needs nothing else.
    const payload = path.join(dir, 'payload');
    await mkdir(payload);
    const bytes = await readFile(path.join(REALWORLD, 'gematik-test', 'TrustedTpm.cab'));
    bytes[200_000] = bytes[200_000]! ^ 0x01;
    await writeFile(path.join(payload, 'TrustedTpm.cab'), bytes);
    const cfg = path.join(dir, 'only-cab.yaml');
    await writeFile(cfg, 'verify:\n  - files: TrustedTpm.cab\n    kind: authenticode\n    trust: [microsoft]\n');
    const r = await runCli(['run', '--config', cfg, '--source', `dir:${payload}`, '--dry-run', '--output', 'json']);
    expect(r.exitCode).toBe(3);
    expect(cabCheck(JSON.parse(r.stdout) as Report)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/TrustedTpm.cab: cabinet digest does not match/),
    });
  });
});
