/**
 * Policy signer: the certificate OPA trusts for policy bundles, from
 * `policy-engine-bundle-keys/{signers,ca}/`. Output: its public key as PEM SubjectPublicKeyInfo, which
 * OPA takes as `keys.<id>.key`. OPA reads the key only at start-up, so a wrong key locks policies out
 * until the next rollout: every check happens here, before anything is published.
 */
import type crypto from 'node:crypto';
import { readFile, readdir, lstat } from 'node:fs/promises';
import path from 'node:path';
import type { Certificate } from '../pki/certs.js';
import { ConfigError, VerifyError, errorMessage } from '../errors.js';
import { certSha256, certificatesFromBytes, keyUsageBit, namesEqual, subjectString } from '../pki/certs.js';
import { validateChain } from '../pki/chain.js';
import { publicKeyFromSpki } from '../pki/engine.js';

export interface PolicySignerOptions {
  /** File name under signers/ to use; required when there are several. */
  signer?: string;
  now: Date;
}

export interface PolicySignerResult {
  /** PEM SubjectPublicKeyInfo, LF line ends, trailing newline. */
  publicKeyPem: string;
  signerFile: string;
  subject: string;
  sha256: string;
  notAfter: string;
  keyType: string;
  anchor: string;
}

/** Keys OPA can verify bundle signatures with (RS*, PS*, ES256/384/512); Go has no brainpool curves. */
const OPA_CURVES = ['prime256v1', 'secp384r1', 'secp521r1'];
const MIN_RSA_BITS = 2048;
const MAX_CERT_FILE_BYTES = 256 * 1024;

export async function derivePolicySigner(dir: string, relDir: string, options: PolicySignerOptions): Promise<PolicySignerResult> {
  const signersDir = path.join(dir, 'signers');
  const names = await regularFiles(signersDir, `${relDir}/signers`);
  const chosen = chooseSigner(names, options.signer, `${relDir}/signers`);
  const signerRel = `${relDir}/signers/${chosen}`;
  const signerCerts = await readCertificates(path.join(signersDir, chosen), signerRel);
  if (signerCerts.length !== 1) throw new VerifyError(`${signerRel}: holds ${signerCerts.length} certificates; a signer file must hold exactly one`, signerRel);
  const signer = signerCerts[0]!;

  const caCerts: Certificate[] = [];
  for (const name of await regularFiles(path.join(dir, 'ca'), `${relDir}/ca`))
    caCerts.push(...(await readCertificates(path.join(dir, 'ca', name), `${relDir}/ca/${name}`)));
  // Self-signed certificates in ca/ are the anchors; the rest may serve as intermediates.
  const roots = caCerts.filter((c) => namesEqual(c.subject, c.issuer));
  const anchors = roots.length > 0 ? roots : caCerts;
  let chain;
  try {
    chain = validateChain({ leaf: signer, intermediates: caCerts.filter((c) => !anchors.includes(c)), anchors, at: options.now });
  } catch (err) {
    throw new VerifyError(`${signerRel}: policy signer does not chain to ${relDir}/ca: ${errorMessage(err)}`, signerRel);
  }
  if (keyUsageBit(signer, 0) === false) throw new VerifyError(`${signerRel}: keyUsage lacks digitalSignature; it cannot sign policy bundles`, signerRel);
  const key = publicKeyFromSpki(signer.spki);
  const keyType = checkKeyType(key, signerRel);
  const publicKeyPem = key.export({ format: 'pem', type: 'spki' }).toString();
  return {
    publicKeyPem,
    signerFile: signerRel,
    subject: subjectString(signer),
    sha256: certSha256(signer),
    notAfter: signer.notAfter.toISOString(),
    keyType,
    anchor: subjectString(chain.anchor),
  };
}

/** The configured name, or the only file; never "the first of several" (that would depend on luck). */
export function chooseSigner(names: string[], configured: string | undefined, where: string): string {
  if (configured !== undefined) {
    if (configured.includes('/') || configured === '..' || configured === '.')
      throw new ConfigError(`policy signer name ${JSON.stringify(configured)} must be a plain file name in ${where}`);
    if (!names.includes(configured))
      throw new VerifyError(`${where}: no signer file ${JSON.stringify(configured)} (present: ${names.join(', ') || 'none'})`, where);
    return configured;
  }
  if (names.length === 1) return names[0]!;
  if (names.length === 0) throw new VerifyError(`${where}: no signer certificate`, where);
  throw new ConfigError(
    `${where} holds ${names.length} signer certificates (${names.join(', ')}); choose one`,
    'set process.policySigner.signer in the config',
  );
}

function checkKeyType(key: crypto.KeyObject, file: string): string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    const curve = details.namedCurve ?? 'unknown';
    if (!OPA_CURVES.includes(curve)) throw new VerifyError(`${file}: EC key on ${curve}; OPA verifies bundles only with P-256, P-384 or P-521`, file);
    return `ec ${curve}`;
  }
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new VerifyError(`${file}: RSA key of ${bits} bits; at least ${MIN_RSA_BITS} required`, file);
    return `${key.asymmetricKeyType} ${bits}`;
  }
  throw new VerifyError(`${file}: ${key.asymmetricKeyType ?? 'unknown'} key; OPA bundle signatures need RSA or EC (P-256/384/521)`, file);
}

async function regularFiles(dir: string, rel: string): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    throw new VerifyError(`${rel}: cannot read directory (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`, rel);
  }
  const out: string[] = [];
  // Links are skipped, never followed: the staging tree is the verified payload and nothing else.
  for (const name of names) if ((await lstat(path.join(dir, name))).isFile()) out.push(name);
  return out;
}

async function readCertificates(file: string, rel: string): Promise<Certificate[]> {
  const bytes = await readFile(file);
  if (bytes.length > MAX_CERT_FILE_BYTES) throw new VerifyError(`${rel}: ${bytes.length} bytes is too large for a certificate file`, rel);
  const certs = certificatesFromBytes(bytes, rel, 16);
  if (certs.length === 0) throw new VerifyError(`${rel}: contains no certificate`, rel);
  return certs;
}
