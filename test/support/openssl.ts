/**
 * Test PKIs made with the openssl CLI (the oracle we compare against). Each PKI is root → intermediate
 * → leaf with SKI/AKI, CA basicConstraints and keyUsage, written as PEM files in one directory.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { requireProgram } from './programs.js';

export type KeyAlg = 'rsa' | 'p256' | 'p384' | 'bp256';

export interface Pki {
  dir: string;
  rootPem: string;
  rootKey: string;
  intPem: string;
  intKey: string;
  leafPem: string;
  leafKey: string;
  cnf: string;
}

export interface OpensslResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function openssl(args: string[], cwd?: string): Promise<OpensslResult> {
  const r = await execa('openssl', args, { reject: false, cwd, stripFinalNewline: false });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** openssl that must succeed (vector generation); the error carries openssl's stderr. */
export async function opensslOk(args: string[], cwd?: string): Promise<string> {
  const r = await openssl(args, cwd);
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

const CNF = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[ca]
default_ca = testca
[testca]
dir = .
database = ./index.txt
new_certs_dir = .
serial = ./serial
default_md = sha256
policy = anything
unique_subject = no
email_in_dn = no
[anything]
commonName = supplied
organizationName = optional
countryName = optional
`;

export async function genKey(file: string, alg: KeyAlg): Promise<void> {
  await requireProgram('openssl', 'openssl');
  const opts =
    alg === 'rsa'
      ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']
      : [
          '-algorithm',
          'EC',
          '-pkeyopt',
          `ec_paramgen_curve:${{ p256: 'P-256', p384: 'P-384', bp256: 'brainpoolP256r1' }[alg]}`,
          '-pkeyopt',
          'ec_param_enc:named_curve',
        ];
  await opensslOk(['genpkey', ...opts, '-out', file]);
}

/**
 * A root → intermediate → leaf PKI. `pss` signs the certificates themselves with RSASSA-PSS (needs RSA
 * keys). Keys can be shared between PKIs to keep generation fast.
 */
export async function makePki(dir: string, label: string, alg: KeyAlg, opts: { pss?: boolean; keysFrom?: Pki } = {}): Promise<Pki> {
  await mkdir(dir, { recursive: true });
  const p = (f: string): string => path.join(dir, f);
  const pki: Pki = {
    dir,
    rootPem: p('root.pem'),
    rootKey: opts.keysFrom?.rootKey ?? p('root.key'),
    intPem: p('int.pem'),
    intKey: opts.keysFrom?.intKey ?? p('int.key'),
    leafPem: p('leaf.pem'),
    leafKey: opts.keysFrom?.leafKey ?? p('leaf.key'),
    cnf: p('openssl.cnf'),
  };
  await writeFile(pki.cnf, CNF);
  if (!opts.keysFrom) await Promise.all([genKey(pki.rootKey, alg), genKey(pki.intKey, alg), genKey(pki.leafKey, alg)]);
  const sig = opts.pss ? ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32'] : [];
  await opensslOk([
    'req',
    '-x509',
    '-new',
    '-config',
    pki.cnf,
    '-extensions',
    'v3_ca',
    '-key',
    pki.rootKey,
    '-sha256',
    ...sig,
    '-subj',
    `/C=DE/O=Example Org/CN=Test Root ${label}`,
    '-days',
    '3650',
    '-set_serial',
    '1',
    '-out',
    pki.rootPem,
  ]);
  await issue(pki, pki.intKey, `/C=DE/O=Example Org/CN=Test Intermediate ${label}`, pki.rootPem, pki.rootKey, 'v3_ca', pki.intPem, sig, 2);
  await issue(pki, pki.leafKey, `/C=DE/O=Example Org/CN=Test Signer ${label}`, pki.intPem, pki.intKey, 'v3_leaf', pki.leafPem, sig, 3);
  return pki;
}

export async function issue(
  pki: Pki,
  key: string,
  subj: string,
  caPem: string,
  caKey: string,
  ext: string,
  out: string,
  sig: string[] = [],
  serial = 100,
): Promise<void> {
  const csr = `${out}.csr`;
  await opensslOk(['req', '-new', '-config', pki.cnf, '-key', key, '-subj', subj, '-out', csr]);
  await opensslOk([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    caPem,
    '-CAkey',
    caKey,
    '-set_serial',
    String(serial),
    '-days',
    '3650',
    '-sha256',
    ...sig,
    '-extfile',
    pki.cnf,
    '-extensions',
    ext,
    '-out',
    out,
  ]);
}

/**
 * A leaf valid only in the past. OpenSSL 3.0's `x509 -req` cannot set explicit dates (3.4+ can), so
 * this goes through `openssl ca` with -startdate/-enddate.
 */
export async function issueExpiredLeaf(pki: Pki, subj: string, out: string): Promise<void> {
  await writeFile(path.join(pki.dir, 'index.txt'), '');
  await writeFile(path.join(pki.dir, 'serial'), '1000\n');
  const csr = `${out}.csr`;
  await opensslOk(['req', '-new', '-config', pki.cnf, '-key', pki.leafKey, '-subj', subj, '-out', csr]);
  await opensslOk(
    [
      'ca',
      '-batch',
      '-config',
      pki.cnf,
      '-cert',
      pki.intPem,
      '-keyfile',
      pki.intKey,
      '-in',
      csr,
      '-out',
      out,
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20210101000000Z',
      '-extensions',
      'v3_leaf',
      '-notext',
      '-preserveDN',
    ],
    pki.dir,
  );
}
