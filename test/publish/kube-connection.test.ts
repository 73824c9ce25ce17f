/**
 * Loading the API connection: kubeconfig (file, KUBECONFIG list, context, namespace) and in-cluster
 * (ServiceAccount token, CA and namespace in a temp dir, served over TLS by the double), with the
 * token re-read as soon as kubelet rotates it. Nothing configured is an error naming what was tried.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadConnection } from '../../src/publish/kube/connection.js';
import { KubeHttp } from '../../src/publish/kube/http.js';
import { writeKubeconfig } from '../support/kube-api/cluster.js';
import { startKubeApi, type KubeApi } from '../support/kube-api/index.js';
import { opensslOk } from '../support/openssl.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
let api: KubeApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

const listPath = (ns: string) => `/api/v1/namespaces/${ns}/configmaps`;

/** CA + server certificate for 127.0.0.1, made with the openssl CLI. */
async function tlsFiles(dir: string): Promise<{ ca: string; key: string; cert: string }> {
  await requireProgram('openssl', 'openssl');
  const f = (n: string) => path.join(dir, n);
  await opensslOk([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=test cluster CA',
  ]);
  await opensslOk([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
    '-subj',
    '/CN=kube-apiserver',
  ]);
  await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await opensslOk([
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('server.crt'),
    '-days',
    '2',
    '-extfile',
    f('ext.cnf'),
  ]);
  const { readFile } = await import('node:fs/promises');
  return { ca: f('ca.crt'), key: await readFile(f('server.key'), 'utf8'), cert: await readFile(f('server.crt'), 'utf8') };
}

describe('API connection', () => {
  it('in-cluster: token, CA and namespace from the ServiceAccount dir; a rotated token is used at once', async () => {
    const dir = await tempDir();
    const tls = await tlsFiles(dir);
    api = await startKubeApi({ rbac: 'allow-all', token: 'token-generation-1', tls: { key: tls.key, cert: tls.cert } });
    const sa = path.join(dir, 'serviceaccount');
    await mkdir(sa);
    const { copyFile } = await import('node:fs/promises');
    await copyFile(tls.ca, path.join(sa, 'ca.crt'));
    await writeFile(path.join(sa, 'token'), 'token-generation-1\n');
    await writeFile(path.join(sa, 'namespace'), 'zeta-guard\n');
    const port = new URL(api.url).port;
    const conn = await loadConnection({ env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port, HOME: dir }, serviceAccountDir: sa });
    expect(conn.server).toBe(`https://127.0.0.1:${port}`);
    expect(conn.namespace).toBe('zeta-guard');
    const secrets: string[] = [];
    const http = new KubeHttp(conn, { deadline: Date.now() + 10_000, onSecret: (s) => secrets.push(s) });
    try {
      expect(await http.request<{ kind: string }>({ method: 'GET', path: listPath('zeta-guard') })).toMatchObject({ kind: 'ConfigMapList' });
      // kubelet swaps the projected token file; the API server stops accepting the old token.
      await writeFile(path.join(sa, 'token.new'), 'token-generation-2\n');
      await rename(path.join(sa, 'token.new'), path.join(sa, 'token'));
      api.options.token = 'token-generation-2';
      expect(await http.request<{ kind: string }>({ method: 'GET', path: listPath('zeta-guard') })).toMatchObject({ kind: 'ConfigMapList' });
      expect(api.requests.map((r) => r.status)).toEqual([200, 200]);
      expect(secrets).toEqual(['token-generation-1', 'token-generation-2']);
    } finally {
      http.close();
    }
  });

  it('in-cluster with a CA that did not issue the server certificate fails (TLS is verified)', async () => {
    const dir = await tempDir();
    const tls = await tlsFiles(dir);
    const other = await tlsFiles(await tempDir());
    api = await startKubeApi({ rbac: 'allow-all', tls: { key: tls.key, cert: tls.cert } });
    const sa = path.join(dir, 'sa');
    await mkdir(sa);
    const { copyFile } = await import('node:fs/promises');
    await copyFile(other.ca, path.join(sa, 'ca.crt'));
    await writeFile(path.join(sa, 'token'), 't');
    const conn = await loadConnection({ env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(api.url).port }, serviceAccountDir: sa });
    const http = new KubeHttp(conn, { deadline: Date.now() + 1_000, policy: { baseMs: 10, capMs: 20, maxAttempts: 1 } });
    await expect(http.request({ method: 'GET', path: listPath('x') })).rejects.toThrow(/certificate/i);
    http.close();
    expect(api.requests).toEqual([]);
  });

  it('kubeconfig: --kubeconfig beats KUBECONFIG beats ~/.kube/config; --context picks cluster, user and namespace', async () => {
    api = await startKubeApi({ rbac: 'allow-all', token: 'ctx-b-token' });
    const dir = await tempDir();
    const a = await writeKubeconfig(await tempDir(), 'https://10.0.0.1:6443', { namespace: 'ns-a', context: 'a' });
    const b = await writeKubeconfig(await tempDir(), api.url, { namespace: 'ns-b', token: 'ctx-b-token', context: 'b' });
    await mkdir(path.join(dir, '.kube'));
    await writeFile(path.join(dir, '.kube', 'config'), 'garbage: [');
    const viaEnv = await loadConnection({ env: { HOME: dir, KUBECONFIG: [path.join(dir, 'missing'), a, b].join(':') } });
    expect(viaEnv.origin).toBe(`kubeconfig ${a}:${b} (context a)`);
    expect(viaEnv.namespace).toBe('ns-a');
    const picked = await loadConnection({ env: { HOME: dir, KUBECONFIG: [a, b].join(':') }, context: 'b' });
    expect(picked.server).toBe(api.url);
    expect(picked.namespace).toBe('ns-b');
    const http = new KubeHttp(picked, { deadline: Date.now() + 5_000 });
    expect(await http.request<{ items: unknown[] }>({ method: 'GET', path: listPath('ns-b') })).toMatchObject({ items: [] });
    http.close();
    expect((await loadConnection({ env: { HOME: dir, KUBECONFIG: a }, kubeconfig: b })).namespace).toBe('ns-b');
    await expect(loadConnection({ env: { HOME: dir, KUBECONFIG: a }, context: 'nope' })).rejects.toThrow(/has no context "nope"/);
    await expect(loadConnection({ env: { HOME: dir } })).rejects.toThrow(ConfigError);
  });

  it('plain HTTP needs insecure-skip-tls-verify; nothing configured names everything tried, never localhost:8080', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'kc');
    await writeFile(
      file,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    await expect(loadConnection({ env: {}, kubeconfig: file })).rejects.toThrow(/is plain HTTP/);
    const sa = path.join(dir, 'no-sa');
    let err: unknown;
    try {
      await loadConnection({
        env: { HOME: dir, KUBECONFIG: path.join(dir, 'absent'), KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' },
        serviceAccountDir: sa,
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      `no Kubernetes API configuration found; tried KUBECONFIG=${path.join(dir, 'absent')} (no such file), ${dir}/.kube/config (absent), in-cluster (no ServiceAccount token at ${sa}/token)`,
    );
  });
});
