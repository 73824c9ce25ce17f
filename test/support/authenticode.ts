/**
 * Authenticode test vectors made with the peers a Debian machine has: `gcab` makes cabinets,
 * `osslsigncode` signs them (and timestamps them without a TSA server), and `osslsigncode verify` is
 * the oracle our verdict is compared with.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { issue, type Pki } from './openssl.js';
import { requireProgram } from './programs.js';

const EXTRA_EXTENSIONS = `
[v3_tsa]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[v3_tls]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
`;

export async function requireCabPeers(): Promise<void> {
  await requireProgram('gcab', 'gcab');
  await requireProgram('osslsigncode', 'osslsigncode');
}

/** Adds a TSA certificate (timeStamping EKU) and a TLS-only certificate under the PKI's intermediate. */
export async function addTsaAndTls(pki: Pki, label: string): Promise<{ tsaPem: string; tlsPem: string }> {
  await appendFile(pki.cnf, EXTRA_EXTENSIONS);
  const tsaPem = path.join(pki.dir, 'tsa.pem');
  const tlsPem = path.join(pki.dir, 'tls.pem');
  // The TSA reuses the leaf key: keys are slow to make and the key is not what these tests are about.
  await issue(pki, pki.leafKey, `/C=DE/O=Example Org/CN=Test TSA ${label}`, pki.intPem, pki.intKey, 'v3_tsa', tsaPem, [], 11);
  await issue(pki, pki.leafKey, `/C=DE/O=Example Org/CN=Test TLS ${label}`, pki.intPem, pki.intKey, 'v3_tls', tlsPem, [], 12);
  return { tsaPem, tlsPem };
}

/** PEM bundle of the given files (leaf first), as osslsigncode's -certs / -TSA-certs want it. */
export async function bundle(out: string, files: string[]): Promise<string> {
  await writeFile(out, (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join(''));
  return out;
}

/** `gcab -c -z`: an MSZIP cabinet of the files in `dir` (names relative to it). */
export async function makeCab(out: string, dir: string, names: string[]): Promise<string> {
  await execa('gcab', ['-c', '-z', out, ...names], { cwd: dir });
  return out;
}

export interface SignOptions {
  certs: string;
  key: string;
  hash?: 'sha1' | 'sha256' | 'sha384' | 'sha512';
  tsa?: { certs: string; key: string; time: Date };
}

export async function signCab(input: string, out: string, opts: SignOptions): Promise<string> {
  const tsa = opts.tsa ? ['-TSA-certs', opts.tsa.certs, '-TSA-key', opts.tsa.key, '-TSA-time', String(Math.floor(opts.tsa.time.getTime() / 1000))] : [];
  const r = await execa('osslsigncode', ['sign', '-certs', opts.certs, '-key', opts.key, '-h', opts.hash ?? 'sha256', ...tsa, '-in', input, '-out', out], {
    reject: false,
  });
  if (r.exitCode !== 0) throw new Error(`osslsigncode sign failed: ${String(r.stdout)}${String(r.stderr)}`);
  return out;
}

/**
 * The oracle's verdict. osslsigncode exits 0 even when the timestamp does not verify (it falls back to
 * the current time), so the output is parsed: any "… verification: failed" line is a failure.
 */
export async function osslsigncodeVerify(cab: string, caFile: string): Promise<{ ok: boolean; output: string }> {
  const r = await execa('osslsigncode', ['verify', '-in', cab, '-CAfile', caFile, '-TSA-CAfile', caFile, '-ignore-crl'], { reject: false, all: true });
  const output = String(r.all);
  const ok = r.exitCode === 0 && /^Succeeded$/m.test(output) && !/verification: failed/i.test(output);
  return { ok, output };
}
