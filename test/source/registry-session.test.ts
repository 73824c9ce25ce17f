/**
 * One registry session per run: the token negotiated at resolve serves the signature lookup and the
 * layers, and the manifest is fetched by digest once. A digest the registry does not hold is "image not
 * found" (exit 4) whatever the signature mode — never a missing-signature verification failure (3).
 */
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource, parseSourceReference, SourceNotFoundError, unpackSource } from '../../src/source/index.js';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { pushLayout, startRegistry, type TestRegistry } from '../support/registry.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const EXAMPLE = path.join(REPO_ROOT, 'fixtures', 'example');
const MISSING = `sha256:${'0'.repeat(64)}`;

describe('registry session', () => {
  const creds = { username: 'ci-bot', password: 'session-secret-pw' };
  let tokens = 0;
  let tokenServer: Server;
  let registry: TestRegistry;
  beforeAll(async () => {
    tokenServer = createServer((_req, res) => {
      tokens++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `tok-${tokens}-abcdef` }));
    });
    await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
    registry = await startRegistry({ bearerRealm: `http://127.0.0.1:${(tokenServer.address() as { port: number }).port}/token` });
    await pushLayout(path.join(EXAMPLE, 'oci'), 'latest', `${registry.host}/zeta/provisioning:v1`, creds);
  });
  afterAll(async () => {
    await registry?.stop();
    await new Promise((r) => tokenServer?.close(r));
  });

  it('negotiates the token once and GETs the manifest by digest once for resolve, signature and unpack', async () => {
    const requests: string[] = [];
    const spy: typeof fetch = (input, init) => {
      requests.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`);
      return fetch(input, init);
    };
    tokens = 0;
    const source = openSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), {
      registry: { insecureHosts: [registry.host], credentials: creds, fetchImpl: spy },
    });
    const resolved = await source.resolve();
    expect(await source.signature(resolved)).toBeUndefined();
    await unpackSource(resolved, path.join(await tempDir(), 'staging'));
    expect(tokens).toBe(1);
    expect(requests.filter((r) => r === `GET /v2/zeta/provisioning/manifests/${resolved.digest}`)).toHaveLength(1);
    expect(requests.filter((r) => r.startsWith('HEAD '))).toEqual(['HEAD /v2/zeta/provisioning/manifests/v1', 'HEAD /v2/zeta/provisioning/manifests/v1']);
  });

  it('a pinned digest the registry lacks is a typed not-found error at resolve', async () => {
    const err = await openSource(parseSourceReference(`${registry.host}/zeta/provisioning@${MISSING}`), {
      registry: { insecureHosts: [registry.host], credentials: creds },
    })
      .resolve()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceNotFoundError);
    expect((err as SourceNotFoundError).exitCode).toBe(4);
    expect((err as Error).message).toBe(`image not found: ${registry.host}/zeta/provisioning@${MISSING}`);
  });

  it('zeta-provision run: a missing manifest is exit 4 with the signature required, optional or off', async () => {
    const dir = await tempDir();
    for (const mode of ['required', 'optional', 'off']) {
      const r = await runCli(
        [
          'run',
          '--config',
          path.join(EXAMPLE, 'zeta-provision.yaml'),
          '--source',
          `${registry.host}/zeta/provisioning@${MISSING}`,
          '--insecure-registry',
          registry.host,
          '--volume',
          path.join(dir, 'vol'),
          '--kube-out',
          path.join(dir, 'kube'),
          '--image-trust-chain',
          path.join(EXAMPLE, 'trust', 'example-image-signing-chain.pem'),
          '--image-signature',
          mode,
          '--output',
          'json',
        ],
        { env: { PROVISIONING_CONTAINER_REGISTRY_USERNAME: creds.username, PROVISIONING_CONTAINER_REGISTRY_TOKEN: creds.password } },
      );
      expect(r.exitCode, `${mode}: ${r.stdout}`).toBe(4);
      expect(JSON.parse(r.stdout).error.message).toBe(`image not found: ${registry.host}/zeta/provisioning@${MISSING}`);
    }
  });
});
