/**
 * The pure verification policies: what counts as a proven time and when a payload is a downgrade,
 * chain-expiry warnings, and the config keys that drive them (manifest, eku, expiryWarningDays).
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/errors.js';
import { downgradeProblem, lastProvenTime, provenTime } from '../../src/verify/downgrade.js';
import { expiryWarnings } from '../../src/verify/expiry.js';
import type { FileCheck, ImageCheck, SignerReport } from '../../src/verify/types.js';

const signer = (earliestExpiry: string, subject = 'CN=Signer'): SignerReport => ({ subject, anchor: 'CN=Root', earliestExpiry });
const check = (file: string, extra: Partial<FileCheck> = {}): FileCheck => ({ file, kind: 'authenticode', ok: true, signers: [], ...extra });
const image = (signedAt?: string): ImageCheck => ({
  checked: true,
  signer: signer('2030-01-01T00:00:00.000Z'),
  identity: 'a@b',
  ...(signedAt ? { signedAt } : {}),
});

describe('proven time', () => {
  it('prefers the image signature time, else the latest verified timestamp, never a failed check', () => {
    const checks = [
      check('a.cab', { timestamp: '2025-01-01T00:00:00.000Z' }),
      check('b.cab', { timestamp: '2025-06-01T00:00:00.000Z' }),
      check('c.cab', { ok: false, timestamp: '2027-01-01T00:00:00.000Z' }),
      check('d.conf', { kind: 'cms-detached' }),
    ];
    expect(provenTime(image('2026-03-01T10:00:00Z'), checks)).toEqual({ time: '2026-03-01T10:00:00.000Z', basis: 'image signature' });
    expect(provenTime(image(), checks)).toEqual({ time: '2025-06-01T00:00:00.000Z', basis: 'RFC 3161 timestamp of b.cab' });
    // An image check that did not happen proves nothing, whatever it carries.
    expect(provenTime({ checked: false, signedAt: '2030-01-01T00:00:00Z' }, checks)).toEqual({
      time: '2025-06-01T00:00:00.000Z',
      basis: 'RFC 3161 timestamp of b.cab',
    });
    expect(provenTime(undefined, [check('d.conf')])).toBeUndefined();
  });

  it('takes the latest recorded time over all targets and ignores unreadable ones', () => {
    expect(
      lastProvenTime([
        undefined,
        { provenTime: 'garbage' },
        { provenTime: '2025-01-01T00:00:00.000Z', provenBasis: 'x' },
        { provenTime: '2025-02-01T00:00:00.000Z' },
      ]),
    ).toEqual({ time: '2025-02-01T00:00:00.000Z', basis: 'unknown' });
    expect(lastProvenTime([undefined, {}])).toBeUndefined();
  });

  it('refuses older and unproven payloads after a proven one; equal and newer pass', () => {
    const last = { time: '2025-06-01T00:00:00.000Z', basis: 'image signature' };
    expect(downgradeProblem({ time: '2025-06-01T00:00:00.000Z', basis: 'image signature' }, last)).toBeUndefined();
    expect(downgradeProblem({ time: '2025-06-01T00:00:00.001Z', basis: 'image signature' }, last)).toBeUndefined();
    expect(downgradeProblem({ time: '2025-05-31T23:59:59.999Z', basis: 'RFC 3161 timestamp of x.cab' }, last)).toBe(
      "payload was proven at 2025-05-31T23:59:59.999Z (RFC 3161 timestamp of x.cab), older than the last applied payload's 2025-06-01T00:00:00.000Z (image signature)",
    );
    expect(downgradeProblem(undefined, last)).toBe(
      'payload proves no signing time, but the last applied payload was proven at 2025-06-01T00:00:00.000Z (image signature)',
    );
    // Nothing recorded (first run, or records from before this check existed): nothing to compare.
    expect(downgradeProblem(undefined, undefined)).toBeUndefined();
    expect(downgradeProblem({ time: '2000-01-01T00:00:00.000Z', basis: 'image signature' }, undefined)).toBeUndefined();
  });
});

describe('expiry warnings', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  it('warns for chains ending within N days, names anchor and date, skips timestamped and failed checks', () => {
    const checks = [
      check('soon.conf', { kind: 'cms-detached', signers: [signer('2026-01-11T12:00:00.000Z', 'CN=Soon')] }),
      check('later.conf', { kind: 'cms-detached', signers: [signer('2026-03-01T00:00:00.000Z', 'CN=Later')] }),
      check('ts.cab', { timestamp: '2025-01-01T00:00:00.000Z', signers: [signer('2026-01-02T00:00:00.000Z', 'CN=Timestamped')] }),
      check('bad.conf', { ok: false, signers: [signer('2026-01-02T00:00:00.000Z', 'CN=Failed')] }),
      check('gone.conf', { kind: 'cms-attached', signers: [signer('2025-12-31T00:00:00.000Z', 'CN=Gone')] }),
    ];
    expect(expiryWarnings(checks, image(), now, 30)).toEqual([
      'soon.conf: the chain of "CN=Soon" (anchor "CN=Root") expires on 2026-01-11T12:00:00.000Z (in 10 days)',
      'gone.conf: the chain of "CN=Gone" (anchor "CN=Root") expires on 2025-12-31T00:00:00.000Z (in 0 days)',
    ]);
    expect(expiryWarnings(checks, image(), now, 0)).toEqual([
      'gone.conf: the chain of "CN=Gone" (anchor "CN=Root") expires on 2025-12-31T00:00:00.000Z (in 0 days)',
    ]);
    expect(expiryWarnings([], image(), now, 5 * 365)).toEqual([
      'image signature: the chain of "CN=Signer" (anchor "CN=Root") expires on 2030-01-01T00:00:00.000Z (in 1461 days)',
    ]);
  });
});

describe('config: manifest, eku, expiryWarningDays', () => {
  const parse = (raw: unknown) => validateConfig(raw, 'test.yaml', '/base');
  const error = (raw: unknown): string => {
    try {
      parse(raw);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('defaults: manifest off with unlisted warn, 30 days, no EKU for cms, codeSigning for authenticode', () => {
    const c = parse({
      trust: { t: ['r.pem'] },
      verify: [
        { files: 'a', trust: ['t'] },
        { files: 'b.cab', kind: 'authenticode', trust: ['t'] },
      ],
    });
    expect(c.manifest).toEqual({ check: 'off', unlisted: 'warn' });
    expect(c.expiryWarningDays).toBe(30);
    expect(c.verify[0]!.eku).toEqual([]);
    expect(c.verify[1]!.eku).toEqual([{ oid: '1.3.6.1.5.5.7.3.3', name: 'codeSigning' }]);
  });

  it('reads the keys, and an authenticode rule keeps codeSigning whatever else it names', () => {
    const c = parse({
      manifest: { check: 'required', unlisted: 'error' },
      expiryWarningDays: 90,
      trust: { t: ['r.pem'] },
      verify: [
        { files: 'a', trust: ['t'], eku: ['emailProtection', '1.2.3.4'] },
        { files: 'b.cab', kind: 'authenticode', trust: ['t'], eku: 'timeStamping' },
      ],
    });
    expect(c.manifest).toEqual({ check: 'required', unlisted: 'error' });
    expect(c.expiryWarningDays).toBe(90);
    expect(c.verify[0]!.eku).toEqual([
      { oid: '1.3.6.1.5.5.7.3.4', name: 'emailProtection' },
      { oid: '1.2.3.4', name: '1.2.3.4' },
    ]);
    expect(c.verify[1]!.eku.map((e) => e.name)).toEqual(['codeSigning', 'timeStamping']);
  });

  it('names the key path of every bad value', () => {
    expect(error({ manifest: { check: 'maybe' } })).toBe('test.yaml: manifest.check: expected "required", "optional" or "off", got "maybe"');
    expect(error({ manifest: { unlisted: 'ignore' } })).toBe('test.yaml: manifest.unlisted: expected "error" or "warn", got "ignore"');
    expect(error({ manifest: { strict: true } })).toBe('test.yaml: manifest.strict: unknown key (expected check, unlisted)');
    expect(error({ manifest: 'required' })).toBe('test.yaml: manifest: expected a mapping with check and unlisted');
    expect(error({ expiryWarningDays: -1 })).toBe('test.yaml: expiryWarningDays: expected a whole number of days from 0 to 3650');
    expect(error({ expiryWarningDays: '30' })).toBe('test.yaml: expiryWarningDays: expected a whole number of days from 0 to 3650');
    expect(error({ trust: { t: ['r.pem'] }, verify: [{ files: 'a', trust: ['t'], eku: ['codesigning'] }] })).toBe(
      'test.yaml: verify.0.eku.0: unknown extendedKeyUsage "codesigning" (expected serverAuth, clientAuth, codeSigning, emailProtection, timeStamping or a dotted OID)',
    );
  });
});
