/**
 * Streams one layer blob into the staging tree: file → sha256 of the blob → optional gunzip →
 * sha256 of the tar (DiffID) → tar-stream → checked file-system operations. The blob is read to EOF
 * and both digests are compared at the end, so a layer that does not match its descriptor fails the
 * whole unpack (the caller then discards the staging tree).
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { errorMessage, SourceError } from '../errors.js';
import { EntryApplier, type UnpackState } from './layer-entries.js';
import type { LayerDescriptor } from './types.js';
import { headerChecksumOk } from './tar-index.js';

export type { UnpackState } from './layer-entries.js';

export interface LayerInput {
  descriptor: LayerDescriptor;
  /** Opens the blob bytes (a layout file, a registry response); read here to EOF and hashed. */
  open: () => Promise<Readable>;
  /** Expected sha256 of the uncompressed tar, from the config's `rootfs.diff_ids`. */
  diffId?: string;
  /** Told the running count of blob bytes read (for progress displays). */
  onBytes?: (bytes: number) => void;
}

const GZIP_TYPES = new Set(['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.docker.image.rootfs.diff.tar.gzip']);
const ZSTD_TYPES = new Set(['application/vnd.oci.image.layer.v1.tar+zstd']);

export async function applyLayer(state: UnpackState, layer: LayerInput, index: number): Promise<void> {
  const { descriptor } = layer;
  const fail = (msg: string): SourceError => new SourceError(`layer ${descriptor.digest}: ${msg}`);
  const maxTar = state.limits.maxTotalBytes + state.limits.maxEntries * 1024 + 64 * 1024 * 1024;

  let blobBytes = 0;
  const blobHash = createHash('sha256');
  const blobTap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      blobBytes += chunk.length;
      // Stop early instead of hashing an endless blob; the size is part of what was signed.
      if (blobBytes > descriptor.size) return cb(fail(`blob is larger than its descriptor (${descriptor.size} bytes)`));
      blobHash.update(chunk);
      layer.onBytes?.(blobBytes);
      cb(null, chunk);
    },
  });
  let tarBytes = 0;
  const tarHash = createHash('sha256');
  // A few MiB of slack between decompression and the tar applier, so gunzip (in the thread pool)
  // keeps working while files are being written instead of the two taking turns.
  const tarTap = new Transform({
    readableHighWaterMark: 4 * 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      tarBytes += chunk.length;
      state.tarBytes += chunk.length;
      if (state.tarBytes > maxTar) return cb(fail('uncompressed data exceeds the unpack limits'));
      tarHash.update(chunk);
      cb(null, chunk);
    },
  });

  const extract = tar.extract();
  const abort = new AbortController();
  const stages: (Readable | Transform | ((src: AsyncIterable<Buffer>) => AsyncGenerator<Buffer>))[] = [blobTap];
  // 512 KiB output chunks: a quarter of the zlib callbacks and buffers (garbage) of 128 KiB.
  if (GZIP_TYPES.has(descriptor.mediaType)) stages.push(createGunzip({ chunkSize: 512 * 1024 }));
  if (ZSTD_TYPES.has(descriptor.mediaType)) stages.push(unzstd(fail));
  stages.push(tarTap);

  const source = await layer.open();
  const pumping = pipeline(
    source,
    ...(stages as [Transform]),
    async (input: AsyncIterable<Buffer>) => {
      for await (const chunk of input) {
        if (!extract.write(chunk)) await drained(extract);
      }
      extract.end(null);
    },
    { signal: abort.signal },
  ).catch((err: unknown) => {
    extract.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err;
  });

  const applier = new EntryApplier(state, descriptor.digest, index, headerTypeByte(extract));
  const applying = (async () => {
    try {
      for await (const entry of extract) await applier.apply(entry);
    } catch (err) {
      // A tar without its two zero blocks (umoci insert writes those) is fine as long as the last
      // entry is complete: only its padding may be missing. A short entry is still an error.
      if (errorMessage(err) === 'Unexpected end of data' && applier.endsCleanly(tarBytes)) return;
      abort.abort();
      throw err;
    }
  })();

  const [pumped, applied] = await Promise.allSettled([pumping, applying]);
  if (applied.status === 'rejected') throw describe(applied.reason, pumped, fail);
  if (pumped.status === 'rejected') throw describe(pumped.reason, pumped, fail);

  const blobDigest = `sha256:${blobHash.digest('hex')}`;
  if (blobBytes !== descriptor.size) throw fail(`blob has ${blobBytes} bytes, descriptor says ${descriptor.size}`);
  if (blobDigest !== descriptor.digest) throw fail(`blob digest mismatch (content hashes to ${blobDigest})`);
  const diffId = `sha256:${tarHash.digest('hex')}`;
  if (layer.diffId !== undefined && diffId !== layer.diffId) {
    throw fail(`uncompressed digest ${diffId} does not match the config's diff_id ${layer.diffId}`);
  }
  if (applier.strippedModes > 0) {
    state.warnings.push(`layer ${descriptor.digest}: stripped setuid/setgid/sticky bits from ${applier.strippedModes} entries`);
  }
}

/** The zstd stage, its complaints worded as this layer's source errors. */
function unzstd(fail: (msg: string) => SourceError): (src: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function* (src) {
    try {
      // The decoder is loaded for zstd layers only; gzip images (the usual case) never need it.
      const { zstdDecoder } = await import('./zstd.js');
      yield* zstdDecoder()(src);
    } catch (err) {
      if (err instanceof SourceError) throw err;
      throw fail(`cannot decompress: ${errorMessage(err)}`);
    }
  };
}

/** Picks the most useful error: our own checks first, then I/O (a missing blob), then the parser. */
function describe(reason: unknown, pumped: PromiseSettledResult<void>, fail: (msg: string) => SourceError): SourceError {
  if (reason instanceof SourceError) return reason;
  if (pumped.status === 'rejected') {
    const p = pumped.reason as NodeJS.ErrnoException;
    if (p instanceof SourceError) return p;
    if (p?.code === 'ENOENT') return fail('blob is missing from the layout');
    if (p?.code && /^Z_/.test(p.code)) return fail(`cannot decompress: ${errorMessage(p)}`);
    if (p?.name !== 'AbortError') return fail(`cannot read: ${errorMessage(p)}`);
  }
  const msg = errorMessage(reason);
  if (msg === 'Unexpected end of data') return fail('tar is truncated');
  return fail(`corrupt tar: ${msg}`);
}

/**
 * The type byte of the header tar-stream parsed last. tar-stream reports types it does not know as
 * `null`; to name the byte in the refusal, the 512-byte blocks its parser takes off its buffer are
 * watched (a block with a valid header checksum is a header). Internal to tar-stream 3 (pinned
 * exactly): when the shape differs, the refusal simply says the byte is not available.
 */
function headerTypeByte(extract: tar.Extract): () => number | undefined {
  const list = (extract as unknown as { _buffer?: { shift?: (n: number) => Buffer } })._buffer;
  if (!list || typeof list.shift !== 'function') return () => undefined;
  let last: number | undefined;
  const shift = list.shift.bind(list);
  list.shift = (n: number): Buffer => {
    const block = shift(n);
    if (n === 512 && block?.length === 512 && headerChecksumOk(block)) last = block[156];
    return block;
  };
  return () => last;
}

function drained(stream: tar.Extract): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', closed);
      resolve();
    };
    const closed = (): void => {
      stream.off('drain', done);
      reject(new Error('tar parser closed'));
    };
    stream.on('drain', done);
    stream.on('close', closed);
  });
}
