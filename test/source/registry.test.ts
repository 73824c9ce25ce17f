/**
 * The registry source against Debian's docker-registry, with the example image pushed by skopeo:
 * anonymous, htpasswd Basic, and the Bearer token flow through a token endpoint served by the test.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceError } from '../../src/errors.js';
import { parseSourceReference, resolveSource, unpackSource, type SourceOptions } from '../../src/source/index.js';
import { sha256File, walkTree } from '../../src/util/fs.js';
import { REPO_ROOT } from '../support/cli.js';
import { pushLayout, startRegistry, type TestRegistry } from '../support/registry.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const LAYOUT = path.join(REPO_ROOT, 'fixtures', 'example', 'oci');
const PAYLOAD = path.join(REPO_ROOT, 'fixtures', 'example', 'payload');

async function treeHashes(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await walkTree(root)) if (e.type === 'file') out[e.path] = await sha256File(path.join(root, e.path));
  return out;
}

async function pull(ref: string, options: SourceOptions): Promise<{ digest: string; files: Record<string, string> }> {
  const resolved = await resolveSource(parseSourceReference(ref), options);
  const root = path.join(await tempDir(), 'staging');
  await unpackSource(resolved, root, {}, options);
  return { digest: resolved.digest, files: await treeHashes(root) };
}

describe('registry source (anonymous)', () => {
  let registry: TestRegistry;
  let pushed: string;
  beforeAll(async () => {
    registry = await startRegistry();
    pushed = await pushLayout(LAYOUT, 'latest', `${registry.host}/zeta/provisioning:v1`);
  });
  afterAll(() => registry?.stop());

  it('pulls by tag and by digest into exactly the payload tree', async () => {
    const insecure = { registry: { insecureHosts: [registry.host] } };
    const byTag = await pull(`${registry.host}/zeta/provisioning:v1`, insecure);
    expect(byTag.digest).toBe(pushed);
    expect(byTag.files).toEqual(await treeHashes(PAYLOAD));
    const byDigest = await pull(`${registry.host}/zeta/provisioning@${pushed}`, insecure);
    expect(byDigest.files).toEqual(byTag.files);
  });

  it('uses plain HTTP only for hosts named insecure', async () => {
    const err = await resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).message).toMatch(/cannot reach registry 127\.0\.0\.1:\d+/);
  });

  it('an unknown tag or repository is a one-line SourceError', async () => {
    const insecure = { registry: { insecureHosts: [registry.host] } };
    await expect(resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:nope`), insecure)).rejects.toThrowError(
      /image not found: 127\.0\.0\.1:\d+\/zeta\/provisioning:nope/,
    );
    await expect(resolveSource(parseSourceReference(`${registry.host}/other/repo:v1`), insecure)).rejects.toThrowError(SourceError);
  });

  it('resolving asks only for the manifest (no blob), so the up-to-date check downloads nothing', async () => {
    const requests: string[] = [];
    const spy: typeof fetch = (input, init) => {
      requests.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`);
      return fetch(input, init);
    };
    await resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), { registry: { insecureHosts: [registry.host], fetchImpl: spy } });
    expect(requests).toEqual(['HEAD /v2/zeta/provisioning/manifests/v1']);
  });
});

describe('registry source (htpasswd Basic)', () => {
  const creds = { username: 'robot', password: 'pa55-w0rd-secret' };
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: creds });
    await pushLayout(LAYOUT, 'latest', `${registry.host}/zeta/provisioning:v1`, creds);
  });
  afterAll(() => registry?.stop());

  it('pulls with the right credentials', async () => {
    const r = await pull(`${registry.host}/zeta/provisioning:v1`, { registry: { insecureHosts: [registry.host], credentials: creds } });
    expect(Object.keys(r.files)).toContain('nginx/nginx.conf');
  });

  it('a wrong password fails naming the user, never the password', async () => {
    const wrong = { username: 'robot', password: 'definitely-wrong-pw' };
    const err = (await resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), {
      registry: { insecureHosts: [registry.host], credentials: wrong },
    }).catch((e: unknown) => e)) as SourceError;
    expect(err).toBeInstanceOf(SourceError);
    expect(err.message).toMatch(/denied as user 'robot' \(HTTP 401\)/);
    expect(`${err.message} ${err.hint}`).not.toContain(wrong.password);
  });

  it('no credentials: says that they are required', async () => {
    await expect(
      resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), { registry: { insecureHosts: [registry.host] } }),
    ).rejects.toThrowError(/requires credentials/);
  });
});

describe('registry source (Bearer token flow)', () => {
  const creds = { username: 'ci-bot', password: 'token-endpoint-secret' };
  const tokenRequests: { auth?: string; scope: string | null; service: string | null }[] = [];
  let tokenServer: Server;
  let registry: TestRegistry;
  beforeAll(async () => {
    tokenServer = createServer((req: IncomingMessage, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      tokenRequests.push({ auth: req.headers.authorization, scope: url.searchParams.get('scope'), service: url.searchParams.get('service') });
      const expected = 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
      if (req.headers.authorization !== expected) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'issued-token-123456' }));
    });
    await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
    const port = (tokenServer.address() as { port: number }).port;
    registry = await startRegistry({ bearerRealm: `http://127.0.0.1:${port}/token` });
    // silly auth accepts any bearer token; skopeo gets one from our endpoint with the same creds.
    await pushLayout(LAYOUT, 'latest', `${registry.host}/zeta/provisioning:v1`, creds);
  });
  afterAll(async () => {
    await registry?.stop();
    await new Promise((r) => tokenServer?.close(r));
  });

  it('fetches a token with the credentials, for the repository scope, and pulls with it', async () => {
    tokenRequests.length = 0;
    const secrets: string[] = [];
    const r = await pull(`${registry.host}/zeta/provisioning:v1`, {
      registry: { insecureHosts: [registry.host], credentials: creds, onSecret: (s) => secrets.push(s) },
    });
    expect(r.files).toEqual(await treeHashes(PAYLOAD));
    expect(tokenRequests[0]).toMatchObject({ scope: 'repository:zeta/provisioning:pull', service: 'test-registry' });
    expect(secrets).toContain('issued-token-123456');
  });

  it('a token endpoint refusing the credentials fails with exit-4 error naming the user only', async () => {
    const err = (await resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), {
      registry: { insecureHosts: [registry.host], credentials: { username: 'ci-bot', password: 'nope-nope-nope' } },
    }).catch((e: unknown) => e)) as SourceError;
    expect(err).toBeInstanceOf(SourceError);
    expect(err.exitCode).toBe(4);
    expect(err.message).toMatch(/authentication at 127\.0\.0\.1:\d+ failed as user 'ci-bot'/);
    expect(err.message).not.toContain('nope-nope-nope');
  });

  it('refuses to send credentials to a plain-HTTP realm of a registry not named insecure', async () => {
    const { fetchBearerToken, parseChallenge } = await import('../../src/source/registry/auth.js');
    const challenge = parseChallenge('Bearer realm="http://127.0.0.1:1/token",service="s",scope="repository:a:pull"')!;
    await expect(fetchBearerToken({ challenge, registryHost: 'r', credentials: creds, fetchImpl: fetch, allowHttp: false })).rejects.toThrowError(
      /refusing to send credentials/,
    );
  });
});
