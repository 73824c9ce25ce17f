/**
 * Debian's docker-registry (distribution 2.8) as a test peer: started on 127.0.0.1 with port 0, storage
 * in a temp dir, stopped by PID. Images are pushed with skopeo from an OCI layout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { requireProgram } from './programs.js';

export interface RegistryAuth {
  htpasswd?: { username: string; password: string };
  /** Bearer challenge pointing at this realm (distribution's "silly" auth accepts any token). */
  bearerRealm?: string;
  /** Serve HTTPS with this certificate and key (PEM files). */
  tls?: { certFile: string; keyFile: string };
}

/** A throwaway P-256 CA in DIR: `ca.pem` (certificate) and `ca.key`. */
export async function makeTestCa(dir: string, cn: string): Promise<string> {
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${cn}`];
  await execa('openssl', [...args, '-keyout', 'ca.key', '-out', 'ca.pem'], { cwd: dir });
  return path.join(dir, 'ca.pem');
}

/** A CA plus a server certificate for IP 127.0.0.1 issued by it, for a registry served over TLS. */
export async function makeLoopbackTls(dir: string, caName: string): Promise<{ caFile: string; tls: { certFile: string; keyFile: string } }> {
  const caFile = await makeTestCa(dir, caName);
  const csr = [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    'srv.key',
    '-out',
    'srv.csr',
  ];
  await execa('openssl', csr, { cwd: dir });
  await writeFile(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  const sign = [
    'x509',
    '-req',
    '-in',
    'srv.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
    '-out',
    'srv.pem',
  ];
  await execa('openssl', sign, { cwd: dir });
  return { caFile, tls: { certFile: path.join(dir, 'srv.pem'), keyFile: path.join(dir, 'srv.key') } };
}

export interface TestRegistry {
  host: string;
  /** The registry's storage root (filesystem driver), for tests that tamper with stored blobs. */
  storageDir: string;
  stop(): Promise<void>;
}

export async function startRegistry(auth: RegistryAuth = {}): Promise<TestRegistry> {
  await requireProgram('docker-registry', 'docker-registry');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'zp-registry-'));
  let authYaml = '';
  if (auth.htpasswd) {
    const { stdout } = await execa('htpasswd', ['-Bbn', auth.htpasswd.username, auth.htpasswd.password]);
    await writeFile(path.join(dir, 'htpasswd'), stdout.trim() + '\n');
    authYaml = `auth:\n  htpasswd:\n    realm: test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  } else if (auth.bearerRealm) {
    authYaml = `auth:\n  silly:\n    realm: ${auth.bearerRealm}\n    service: test-registry\n`;
  }
  const config = path.join(dir, 'config.yml');
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n${auth.tls ? `  tls:\n    certificate: ${auth.tls.certFile}\n    key: ${auth.tls.keyFile}\n` : ''}${authYaml}`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const host = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(seen);
      if (m) resolve(`127.0.0.1:${m[1]}`);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`docker-registry exited with ${code}: ${seen.slice(-500)}`)));
    setTimeout(() => reject(new Error(`docker-registry did not start: ${seen.slice(-500)}`)), 10_000);
  });
  return {
    host,
    storageDir: path.join(dir, 'data'),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Push an OCI layout's tag into the registry with skopeo; returns the pushed manifest digest. */
export async function pushLayout(layout: string, tag: string, dest: string, creds?: { username: string; password: string }): Promise<string> {
  await requireProgram('skopeo', 'skopeo');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'zp-push-'));
  try {
    const digestFile = path.join(dir, 'digest');
    const args = ['copy', '--quiet', '--dest-tls-verify=false', '--digestfile', digestFile, `oci:${layout}:${tag}`, `docker://${dest}`];
    if (creds) args.splice(1, 0, '--dest-creds', `${creds.username}:${creds.password}`);
    await execa('skopeo', args);
    return (await readFile(digestFile, 'utf8')).trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Push an OCI layout's tag and its cosign signature tag (`sha256-<hex>.sig`), as `cosign copy` would. */
export async function pushSignedLayout(
  layout: string,
  tag: string,
  destRepo: string,
  destTag: string,
  creds?: { username: string; password: string },
): Promise<string> {
  const digest = await pushLayout(layout, tag, `${destRepo}:${destTag}`, creds);
  const sigTag = `sha256-${digest.slice('sha256:'.length)}.sig`;
  await pushLayout(layout, sigTag, `${destRepo}:${sigTag}`, creds);
  return digest;
}
