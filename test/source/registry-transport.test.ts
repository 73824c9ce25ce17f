/**
 * Registry transport: TLS with a private CA (added to, not replacing, the system roots) and bounded
 * retries, against docker-registry behind a fault-injecting reverse proxy written here.
 */
import { createServer, request, type Server } from 'node:http';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceError } from '../../src/errors.js';
import { parseSourceReference, resolveSource, unpackSource } from '../../src/source/index.js';
import { createRegistryFetch, retryDelay } from '../../src/source/registry/transport.js';
import { REPO_ROOT } from '../support/cli.js';
import { makeLoopbackTls, pushLayout, startRegistry, type TestRegistry } from '../support/registry.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const LAYOUT = path.join(REPO_ROOT, 'fixtures', 'example', 'oci');

describe('retry delay', () => {
  it('honours Retry-After in seconds and as a date, capped at 60 s', () => {
    expect(retryDelay('3', 1, 500)).toBe(3000);
    expect(retryDelay(new Date(10_000 + 2000).toUTCString(), 1, 500, 10_000)).toBeGreaterThanOrEqual(1000);
    expect(retryDelay('3600', 1, 500)).toBe(60_000);
  });
  it('backs off exponentially with jitter within [cap/2, cap]', () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const cap = Math.min(30_000, 500 * 2 ** (attempt - 1));
      const d = retryDelay(null, attempt, 500);
      expect(d).toBeGreaterThanOrEqual(cap / 2);
      expect(d).toBeLessThanOrEqual(cap);
    }
  });
});

describe('registry over TLS with a private CA', () => {
  let registry: TestRegistry;
  let caFile: string;
  beforeAll(async () => {
    const dir = await tempDir();
    const pki = await makeLoopbackTls(dir, 'Test Registry CA');
    caFile = pki.caFile;
    registry = await startRegistry({ tls: pki.tls });
    await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${LAYOUT}:latest`, `docker://${registry.host}/zeta/provisioning:v1`]);
  });
  afterAll(() => registry?.stop());

  it('pulls when the CA is given', async () => {
    const options = { registry: { transport: { caFile } } };
    const resolved = await resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), options);
    const result = await unpackSource(resolved, path.join(await tempDir(), 's'), {}, options);
    expect(result.files).toBeGreaterThan(3);
  });

  it('fails with exit 4 and a hint naming the CA setting when it is not', async () => {
    const err = (await resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), { registry: { transport: { attempts: 1 } } }).catch(
      (e: unknown) => e,
    )) as SourceError;
    expect(err).toBeInstanceOf(SourceError);
    expect(err.exitCode).toBe(4);
    expect(err.hint).toMatch(/PROVISIONING_CONTAINER_REGISTRY_CA_FILE/);
  });
});

describe('retries through a faulty proxy', () => {
  let registry: TestRegistry;
  let proxy: Server;
  let proxyHost = '';
  /** Status codes to answer instead of forwarding, consumed one per request. */
  const faults: { status: number; headers?: Record<string, string> }[] = [];
  let seen = 0;
  beforeAll(async () => {
    registry = await startRegistry();
    await pushLayout(LAYOUT, 'latest', `${registry.host}/zeta/provisioning:v1`);
    const [rhost, rport] = registry.host.split(':');
    proxy = createServer((req, res) => {
      seen++;
      const fault = faults.shift();
      if (fault) {
        res.writeHead(fault.status, fault.headers).end('{"errors":[]}');
        return;
      }
      const up = request({ host: rhost, port: Number(rport), path: req.url, method: req.method, headers: { ...req.headers, host: registry.host } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyHost = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => proxy?.close(r));
    await registry?.stop();
  });

  const options = (extra = {}) => ({ registry: { insecureHosts: [proxyHost], transport: { baseDelayMs: 10, ...extra } } });

  it('retries 500 and 503, then succeeds', async () => {
    faults.push({ status: 500 }, { status: 503 });
    seen = 0;
    const resolved = await resolveSource(parseSourceReference(`${proxyHost}/zeta/provisioning:v1`), options());
    expect(resolved.digest).toMatch(/^sha256:/);
    expect(seen).toBe(3);
  });

  it('waits as long as Retry-After says on 429', async () => {
    faults.push({ status: 429, headers: { 'retry-after': '1' } });
    const started = Date.now();
    await resolveSource(parseSourceReference(`${proxyHost}/zeta/provisioning:v1`), options());
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('gives up after the attempts and reports the last status', async () => {
    faults.push(...Array.from({ length: 3 }, () => ({ status: 502 })));
    await expect(resolveSource(parseSourceReference(`${proxyHost}/zeta/provisioning:v1`), options({ attempts: 3 }))).rejects.toThrowError(/HTTP 502/);
  });

  it('stops at the overall deadline', async () => {
    faults.push(...Array.from({ length: 5 }, () => ({ status: 429, headers: { 'retry-after': '30' } })));
    await expect(resolveSource(parseSourceReference(`${proxyHost}/zeta/provisioning:v1`), options({ deadlineMs: 2000 }))).rejects.toThrowError(
      /deadline \(last: HTTP 429\)/,
    );
    faults.length = 0;
  });

  it('the default fetch reads HTTPS_PROXY and NO_PROXY without failing', async () => {
    const f = await createRegistryFetch({ env: { HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1' } });
    const res = await f(`http://${registry.host}/v2/`);
    expect(res.status).toBe(200);
  });
});

describe('a registry that never answers', () => {
  it('times out waiting for headers, retries, then fails as unreachable', async () => {
    let requests = 0;
    const silent = createServer(() => {
      requests++; // never answers
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      const options = { registry: { insecureHosts: [host], transport: { requestTimeoutMs: 200, attempts: 2, baseDelayMs: 10 } } };
      const err = (await resolveSource(parseSourceReference(`${host}/zeta/provisioning:v1`), options).catch((e: unknown) => e)) as SourceError;
      expect(err).toBeInstanceOf(SourceError);
      expect(err.message).toBe(`cannot reach registry ${host}: UND_ERR_HEADERS_TIMEOUT`);
      expect(requests).toBe(2);
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });
});
