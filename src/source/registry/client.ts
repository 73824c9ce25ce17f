/**
 * Distribution API v2 client over Node's fetch: the full Accept list on every manifest request, tag
 * resolved once, everything else fetched by digest and checked against it. Redirects are followed by
 * hand so the Authorization header never travels to another host.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { SourceError, errorMessage } from '../../errors.js';
import { SourceNotFoundError } from '../types.js';
import { MAX_JSON_BLOB_BYTES, parseJson, type Descriptor } from '../blobs.js';
import { INDEX_TYPES, MANIFEST_TYPES, OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST, type BlobStore } from '../image.js';
import { basicHeader, CREDENTIALS_HINT, fetchBearerToken, parseChallenge, type Credentials } from './auth.js';
import { causeCode, connectionHint, tlsExpected, userAgent } from './diagnose.js';
import type { ImageReference } from './reference.js';

const ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(', ');
const SCHEMA1 = /application\/vnd\.docker\.distribution\.manifest\.v1/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const MAX_REDIRECTS = 5;

export interface RegistryOptions {
  /** `origin` (a login file, a credential helper) is named when the registry refuses them. */
  credentials?: Credentials & { origin?: string };
  /** The --registry-ca file, named in the hint when TLS verification fails. */
  caFile?: string;
  /** Plain HTTP for this registry (only for hosts the operator named as insecure). */
  insecure?: boolean;
  fetchImpl?: typeof fetch;
  /** Called with every secret the client obtains (bearer tokens), so logs can redact it. */
  onSecret?: (secret: string) => void;
}

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export class RegistryClient {
  private authorization: string | undefined;
  private readonly fetchImpl: typeof fetch;

  constructor(
    readonly image: ImageReference,
    private readonly opts: RegistryOptions = {},
  ) {
    this.fetchImpl = opts.fetchImpl ?? fetch;
  }

  private get origin(): string {
    return `${this.opts.insecure ? 'http' : 'https'}://${this.image.apiHost}`;
  }

  private url(kind: 'manifests' | 'blobs', reference: string): URL {
    return new URL(`${this.origin}/v2/${this.image.repository}/${kind}/${reference}`);
  }

  /** The manifest digest the reference names now: HEAD for tags (no body), GET when HEAD is unhelpful. */
  async resolveDigest(): Promise<string> {
    if (this.image.digest) {
      // A pinned digest must exist here: otherwise the missing signature beside it would be reported
      // as a verification failure instead of "image not found".
      const head = await this.send(this.url('manifests', this.image.digest), { method: 'HEAD', headers: { Accept: ACCEPT } });
      await head.body?.cancel();
      if (head.status === 404) throw this.notFound(this.image.digest);
      if (!head.ok && head.status !== 405 && head.status !== 501) throw await this.httpError(head, `manifest ${this.image.digest}`);
      return this.image.digest;
    }
    const tag = this.image.tag ?? 'latest';
    const head = await this.send(this.url('manifests', tag), { method: 'HEAD', headers: { Accept: ACCEPT } });
    const headerDigest = head.headers.get('docker-content-digest');
    if (head.ok && headerDigest && DIGEST.test(headerDigest) && !SCHEMA1.test(head.headers.get('content-type') ?? '')) return headerDigest;
    if (head.status === 404) throw this.notFound(tag);
    // GET only where HEAD is unhelpful (no digest header, HEAD not implemented); a failing registry stays failed.
    if (!head.ok && head.status !== 405 && head.status !== 501) throw await this.httpError(head, `manifest ${tag}`);
    return (await this.getManifest(tag)).digest;
  }

  /** A manifest by tag or digest, capped, its digest computed from the bytes (and compared when pinned). */
  async getManifest(reference: string): Promise<FetchedManifest> {
    const res = await this.send(this.url('manifests', reference), { headers: { Accept: ACCEPT } });
    if (res.status === 404) throw this.notFound(reference);
    if (!res.ok) throw await this.httpError(res, `manifest ${reference}`);
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    if (SCHEMA1.test(mediaType)) throw new SourceError(`${this.describe()}: schema 1 manifests are not supported (re-push the image with a current client)`);
    const bytes = await readCappedBody(res, MAX_JSON_BLOB_BYTES, `manifest ${reference}`);
    const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
    if (DIGEST.test(reference) && digest !== reference)
      throw new SourceError(`manifest ${reference} from ${this.image.registry} does not match its digest (got ${digest})`);
    return { digest, mediaType, bytes };
  }

  /** A manifest that may legitimately be absent (a signature tag): undefined on 404. */
  async findManifest(reference: string): Promise<FetchedManifest | undefined> {
    try {
      return await this.getManifest(reference);
    } catch (err) {
      if (err instanceof SourceNotFoundError) return undefined;
      throw err;
    }
  }

  /** A layer blob as a stream; the layer applier hashes it to EOF against the descriptor. */
  async openBlob(digest: string): Promise<Readable> {
    if (!DIGEST.test(digest)) throw new SourceError(`invalid blob digest '${digest}'`);
    const res = await this.send(this.url('blobs', digest), {});
    if (res.status === 404) throw new SourceNotFoundError(`blob ${digest} not found in ${this.describe()}`);
    if (!res.ok || !res.body) throw await this.httpError(res, `blob ${digest}`);
    return Readable.fromWeb(res.body as unknown as WebReadableStream);
  }

  /** The image's blobs as a BlobStore for the shared manifest logic; `fetched` is not asked for again. */
  store(fetched?: FetchedManifest): BlobStore {
    return {
      readJson: async (desc: Descriptor, what: string) => {
        const isManifest = MANIFEST_TYPES.has(desc.mediaType) || INDEX_TYPES.has(desc.mediaType);
        const bytes = fetched?.digest === desc.digest ? fetched.bytes : isManifest ? (await this.getManifest(desc.digest)).bytes : await this.readBlob(desc);
        if (desc.size >= 0 && bytes.length !== desc.size) throw new SourceError(`${what} ${desc.digest}: ${bytes.length} bytes, descriptor says ${desc.size}`);
        return parseJson(bytes, `${what} ${desc.digest}`);
      },
      openBlob: (layer) => this.openBlob(layer.digest),
    };
  }

  /** A small blob (config, signature payload) read whole, capped and checked against its digest. */
  async readBlob(desc: Descriptor): Promise<Buffer> {
    const res = await this.send(this.url('blobs', desc.digest), {});
    if (!res.ok) throw await this.httpError(res, `blob ${desc.digest}`);
    const bytes = await readCappedBody(res, MAX_JSON_BLOB_BYTES, `blob ${desc.digest}`);
    const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
    if (digest !== desc.digest) throw new SourceError(`blob ${desc.digest} does not match its digest (got ${digest})`);
    return bytes;
  }

  /** One request with auth negotiation (one retry after a 401) and hand-followed redirects. */
  private async send(url: URL, init: RequestInit, retried = false): Promise<Response> {
    let target = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers = new Headers(init.headers);
      headers.set('User-Agent', userAgent());
      // Credentials only to the registry's own origin; a redirect to a CDN gets none.
      if (this.authorization && target.origin === this.origin) headers.set('Authorization', this.authorization);
      const res = await this.fetchOnce(target, { ...init, headers, redirect: 'manual' });
      if (res.status === 400 && this.opts.insecure) await this.refuseTlsAsPlain();
      if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
        await res.body?.cancel();
        const next = new URL(res.headers.get('location')!, target);
        if (target.protocol === 'https:' && next.protocol !== 'https:')
          throw new SourceError(`${this.describe()}: refusing a redirect from https to ${next.protocol}`);
        target = next;
        continue;
      }
      if (res.status === 401 && !retried && target.origin === this.origin) {
        await res.body?.cancel();
        await this.authenticate(res.headers.get('www-authenticate') ?? '');
        return this.send(url, init, true);
      }
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        const c = this.opts.credentials;
        const who = c ? `as user '${c.username}'${c.origin ? ` (credentials from ${c.origin})` : ''}` : 'anonymously';
        throw new SourceError(`access to ${this.describe()} denied ${who} (HTTP ${res.status})`, CREDENTIALS_HINT);
      }
      return res;
    }
    throw new SourceError(`${this.describe()}: more than ${MAX_REDIRECTS} redirects`);
  }

  /**
   * A TLS server asked in plain HTTP answers 400 "Client sent an HTTP request to an HTTPS server" (Go),
   * in a body a HEAD does not carry: asked once more with a GET of /v2/ to tell that from a real 400.
   */
  private async refuseTlsAsPlain(): Promise<void> {
    const probe = await this.fetchOnce(new URL(`${this.origin}/v2/`), { headers: { 'User-Agent': userAgent() } });
    const text = (await probe.text()).slice(0, 4096);
    if (tlsExpected(probe.status, text)) {
      throw new SourceError(
        `registry ${this.image.registry} speaks TLS, but it is named in --insecure-registry`,
        `remove ${this.image.registry} from --insecure-registry (pass its CA with --registry-ca FILE if it is a private one)`,
      );
    }
  }

  private async authenticate(header: string): Promise<void> {
    const challenge = parseChallenge(header);
    if (challenge?.scheme === 'bearer') {
      this.authorization = await fetchBearerToken({
        challenge,
        registryHost: this.image.registry,
        credentials: this.opts.credentials,
        fetchImpl: this.fetchImpl,
        userAgent: userAgent(),
        allowHttp: this.opts.insecure === true,
      });
      this.opts.onSecret?.(this.authorization.slice('Bearer '.length));
      return;
    }
    if (challenge?.scheme === 'basic') {
      if (!this.opts.credentials)
        throw new SourceError(`${this.describe()} requires credentials, and no login for ${this.image.registry} was found`, CREDENTIALS_HINT);
      this.authorization = basicHeader(this.opts.credentials);
      return;
    }
    throw new SourceError(`${this.describe()} asks for an unsupported authentication scheme '${challenge?.scheme ?? header.slice(0, 20)}'`);
  }

  private async fetchOnce(url: URL, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchImpl(url, init);
    } catch (err) {
      if (err instanceof SourceError) throw err;
      const hint = await connectionHint(err, { registry: this.image.registry, url, insecure: this.opts.insecure === true, caFile: this.opts.caFile });
      throw new SourceError(`cannot reach registry ${this.image.registry}: ${networkReason(err)}`, hint, { cause: err });
    }
  }

  private describe(): string {
    return `${this.image.registry}/${this.image.repository}`;
  }

  private notFound(reference: string): SourceError {
    return new SourceNotFoundError(`image not found: ${this.describe()}${DIGEST.test(reference) ? '@' : ':'}${reference}`);
  }

  private async httpError(res: Response, what: string): Promise<SourceError> {
    await res.body?.cancel();
    return new SourceError(`${this.describe()}: ${what}: registry answered HTTP ${res.status}`);
  }
}

/** Reads a response body up to `cap` bytes; a larger body is an error, not a memory problem. */
export async function readCappedBody(res: Response, cap: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > cap) {
    await res.body?.cancel();
    throw new SourceError(`${what} is ${declared} bytes, over the cap of ${cap}`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > cap) throw new SourceError(`${what} is over the cap of ${cap} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

function networkReason(err: unknown): string {
  const code = causeCode(err);
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host name not found';
  if (code === 'ECONNRESET') return 'connection reset';
  if (code) return code;
  return errorMessage(err);
}
