/**
 * A registry serving bad data: a manifest over the size cap and a blob whose bytes no longer match
 * its digest (changed in the registry's own storage). Both are exit-4 source errors before anything
 * is trusted.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseSourceReference, resolveSource, unpackSource } from '../../src/source/index.js';
import { MAX_JSON_BLOB_BYTES } from '../../src/source/blobs.js';
import { REPO_ROOT } from '../support/cli.js';
import { createServer } from 'node:http';
import { RegistryClient } from '../../src/source/registry/client.js';
import { parseImageReference } from '../../src/source/registry/reference.js';
import { OCI_MANIFEST, digestOf } from '../support/oci-push.js';
import { pushLayout, startRegistry, type TestRegistry } from '../support/registry.js';
import { useTempDirs } from '../support/tmp.js';
import { sourceFailure } from '../support/errors.js';

const tempDir = useTempDirs();
const LAYOUT = path.join(REPO_ROOT, 'fixtures', 'example', 'oci');

let registry: TestRegistry;
let tmpBase: string;
beforeAll(async () => {
  registry = await startRegistry();
});
beforeEach(async () => {
  tmpBase = await tempDir();
});
afterAll(() => registry?.stop());

const options = () => ({ registry: { insecureHosts: [registry.host] } });

describe('hostile registry content', () => {
  it('refuses a manifest over the size cap, announced or streamed without a length', async () => {
    // docker-registry itself refuses to store manifests over 4 MiB, so a hostile one is served here.
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 2 },
        layers: [],
        annotations: { padding: 'x'.repeat(MAX_JSON_BLOB_BYTES + 1000) },
      }),
    );
    const digest = digestOf(manifest);
    let sent = 0;
    const server = createServer((req, res) => {
      const headers = { 'content-type': OCI_MANIFEST, 'docker-content-digest': digest };
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.method === 'HEAD') return void res.writeHead(200, { ...headers, 'content-length': String(manifest.length) }).end();
      if (!req.url?.endsWith('/streamed')) return void res.writeHead(200, { ...headers, 'content-length': String(manifest.length) }).end(manifest);
      // No length: up to 256 MiB in chunks, for as long as the client keeps reading.
      res.writeHead(200, headers);
      const chunk = Buffer.alloc(65536, 0x20);
      const pump = (): void => {
        while (sent < 256 * 1024 * 1024 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const opts = { registry: { insecureHosts: [host], transport: { attempts: 1 } } };
      const announced = await sourceFailure(
        resolveSource(parseSourceReference(`${host}/evil/image@${digest}`), opts).then((r) => unpackSource(r, path.join(tmpBase, 'a'), {}, { ...opts })),
      );
      expect(announced.message).toBe(`manifest ${digest} is ${manifest.length} bytes, over the cap of ${MAX_JSON_BLOB_BYTES}`);
      sent = 0;
      const client = new RegistryClient(parseImageReference(`${host}/evil/image:streamed`), { insecure: true });
      const streamed = await sourceFailure(client.getManifest('streamed'));
      expect(streamed.message).toBe(`manifest streamed is over the cap of ${MAX_JSON_BLOB_BYTES} bytes`);
      // Reading stopped at the cap instead of buffering everything the server offered.
      expect(sent).toBeLessThan(64 * 1024 * 1024);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses a layer blob whose stored bytes no longer match its digest', async () => {
    await pushLayout(LAYOUT, 'latest', `${registry.host}/tampered/image:v1`);
    const resolved = await resolveSource(parseSourceReference(`${registry.host}/tampered/image:v1`), options());
    const staging = path.join(await tempDir(), 's');
    // The largest blob in the registry's storage is a layer; flip bytes in place, size unchanged.
    const blobsDir = path.join(registry.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256');
    let largest = { file: '', size: -1, hex: '' };
    for (const prefix of await fs.readdir(blobsDir)) {
      for (const hex of await fs.readdir(path.join(blobsDir, prefix))) {
        const file = path.join(blobsDir, prefix, hex, 'data');
        const { size } = await fs.stat(file);
        if (size > largest.size) largest = { file, size, hex };
      }
    }
    const bytes = await fs.readFile(largest.file);
    for (let i = bytes.length - 40; i < bytes.length - 20; i++) bytes[i] = bytes[i]! ^ 0xff;
    await fs.writeFile(largest.file, bytes);
    const err = await sourceFailure(unpackSource(resolved, staging, {}, options()));
    expect(err.message).toMatch(new RegExp(`^layer sha256:${largest.hex}: `));
    // Depending on where the flipped bytes land, gunzip or the digest notices first; both stop the unpack.
    expect(err.message).toMatch(/blob digest mismatch|cannot decompress|corrupt tar|does not match the config's diff_id/);
  });
});
