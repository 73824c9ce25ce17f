/**
 * The TSL signer's path on gematik's real test TSL with the shipped trust sets (config/trust/): the
 * KeyInfo carries only the "TSL Signing Unit"; the GEM.TSL-CA comes from the list's own services and
 * the path must end at a shipped GEM.RCA root. Pure: no XML signature value is checked here (the
 * stored copy's digest differs, see tsl.test.ts), only whom the signer chains to.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinTrustDir } from '../../src/config/index.js';
import { VerifyError } from '../../src/errors.js';
import { loadCertificates, parseCertificate, subjectString } from '../../src/pki/certs.js';
import { readTsl } from '../../src/process/tsl/model.js';
import { trustTslSigner, describeSignatureFailure } from '../../src/process/tsl/trust.js';
import { parseTslXml } from '../../src/process/tsl/xml.js';
import { checkRootsJson } from '../../src/process/roots-json.js';
import { REPO_ROOT } from '../support/cli.js';

const REALWORLD = process.env.ZETA_REALWORLD_DIR ?? path.resolve(REPO_ROOT, '..', 'shared', 'realworld');
const REAL = path.join(REALWORLD, 'gematik-test');
const AT = new Date('2026-06-01T00:00:00Z');

async function realSigner() {
  const bytes = await readFile(path.join(REAL, 'ECC-RSA_TSL-test.xml'));
  const parsed = parseTslXml(bytes, 'tsl.xml');
  const keyInfo = parsed.doc.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'X509Certificate');
  const signer = parseCertificate(Buffer.from(keyInfo.item(keyInfo.length - 1)!.textContent!.replace(/\s+/g, ''), 'base64'));
  const serviceCerts = readTsl(parsed, 'tsl.xml').services.flatMap((s) => s.certificates);
  return { signer, serviceCerts };
}

describe.skipIf(!existsSync(REAL))("TSL signer trust on gematik's real test TSL (shared/realworld)", () => {
  it('chains signer → GEM.TSL-CA28 (from the list) → GEM.RCA4 TEST-ONLY (shipped gematik-rca-test)', async () => {
    const { signer, serviceCerts } = await realSigner();
    const anchors = await loadCertificates([builtinTrustDir('gematik-rca-test')]);
    expect(anchors).toHaveLength(10);
    const cross = checkRootsJson(await readFile(path.join(REAL, 'roots.json')), 'roots.json').cross;
    const chain = trustTslSigner(signer, [], { anchors, intermediates: [], anchorOrigin: 'trust set gematik-rca-test', serviceCerts, cross }, AT, 'tsl.xml');
    expect(chain.path.map(subjectString)).toEqual([
      'CN=TSL Signing Unit 12 TEST-ONLY, O=gematik GmbH NOT-VALID, C=DE',
      'CN=GEM.TSL-CA28 TEST-ONLY, OU=TSL-Signer-CA der Telematikinfrastruktur, O=gematik GmbH NOT-VALID, C=DE',
      'CN=GEM.RCA4 TEST-ONLY, OU=Zentrale Root-CA der Telematikinfrastruktur, O=gematik GmbH NOT-VALID, C=DE',
    ]);
  });

  it("a root alone, without the list's GEM.TSL-CA entries, says which CA is missing and what to add", async () => {
    const { signer } = await realSigner();
    const anchors = await loadCertificates([builtinTrustDir('gematik-rca-test')]);
    let err: unknown;
    try {
      trustTslSigner(signer, [], { anchors, intermediates: [], anchorOrigin: 'trust set gematik-rca-test' }, AT, 'tsl.xml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VerifyError);
    expect((err as VerifyError).message).toBe(
      'tsl.xml: TSL signature: no path from the TSL signer "CN=TSL Signing Unit 12 TEST-ONLY, O=gematik GmbH NOT-VALID, C=DE" to a trusted GEM root (trust set gematik-rca-test): issuer "CN=GEM.TSL-CA28 TEST-ONLY, OU=TSL-Signer-CA der Telematikinfrastruktur, O=gematik GmbH NOT-VALID, C=DE" not found',
    );
    expect((err as VerifyError).hint).toMatch(/^add the issuing GEM\.TSL-CA or its GEM\.RCA root with --tsl-signer-anchor FILE/);
  });

  it('the shipped production roots do not anchor a TEST-ONLY signer; the hint names the test set', async () => {
    const { signer, serviceCerts } = await realSigner();
    const anchors = await loadCertificates([builtinTrustDir('gematik-rca')]);
    expect(anchors.map(subjectString).every((s) => /CN=GEM\.RCA\d+, OU=Zentrale Root-CA der Telematikinfrastruktur, O=gematik GmbH, C=DE/.test(s))).toBe(true);
    const cross = checkRootsJson(await readFile(path.join(REAL, 'roots.json')), 'roots.json').cross;
    expect(() =>
      trustTslSigner(signer, [], { anchors, intermediates: [], anchorOrigin: 'trust set gematik-rca', serviceCerts, cross }, AT, 'tsl.xml'),
    ).toThrowError(
      expect.objectContaining({
        message: expect.stringMatching(/no path from the TSL signer .* to a trusted GEM root \(trust set gematik-rca\)/),
        hint: expect.stringContaining('--tsl-trust gematik-rca-test'),
      }),
    );
  });
});

describe('operator wording of XML signature failures', () => {
  it('says what was altered', () => {
    expect(describeSignatureFailure('digest of the signed document differs (reference 1 (URI=""))')).toBe(
      'the TSL was altered after signing: digest of the signed document differs (reference 1 (URI=""))',
    );
    expect(describeSignatureFailure("signature value does not verify with the signer's key")).toBe(
      "the TSL or its signature was altered: signature value does not verify with the signer's key",
    );
    expect(describeSignatureFailure('expected exactly one ds:Signature, found 0')).toBe('expected exactly one ds:Signature, found 0');
  });
});
