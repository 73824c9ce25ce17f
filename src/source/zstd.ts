/**
 * Streaming zstd decoding for `+zstd` layers (Node 20's zlib has none): fzstd, pure JavaScript, behind a
 * frame scanner of our own. The scanner exists because the decoder trusts the stream: it allocates
 * whatever window a frame header declares (up to 2 GiB) and decodes a whole input chunk at once, so a
 * few kilobytes of RLE blocks would expand to gigabytes in memory before any size cap downstream could
 * react. The scanner reads only frame and block headers, refuses windows over the limit (128 MiB, the
 * reference decoder's default), and cuts the input where the output it may produce exceeds a bound, so
 * the decoder never gets more than that per step and backpressure holds.
 */
import { Decompress } from 'fzstd';
import { errorMessage } from '../errors.js';

/** zstd's own default decoder limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT = 27). */
export const MAX_ZSTD_WINDOW = 128 * 1024 * 1024;
/** Output the decoder may produce from one push before we yield to the consumer. */
const MAX_OUTPUT_PER_STEP = 2 * 1024 * 1024;
const MAX_BLOCK = 128 * 1024;
const FRAME_MAGIC = 0xfd2fb528;

type State = 'magic' | 'skippable-size' | 'frame-header' | 'frame-rest' | 'block-header';

/** Walks frame and block headers only (content is skipped by count); throws on what it refuses. */
export class ZstdFrameScanner {
  private state: State = 'magic';
  private header: number[] = [];
  private want = 4;
  private skip = 0;
  private descriptor = 0;
  private lastBlock = false;
  private checksum = false;
  private pendingOutput = 0;
  private frames = 0;

  constructor(private readonly maxWindow = MAX_ZSTD_WINDOW) {}

  /** Offsets in `chunk` after which the decoder should be fed separately (bounded output per step). */
  scan(chunk: Uint8Array): number[] {
    const cuts: number[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        if (this.skip === 0) this.afterSkip();
        if (this.pendingOutput >= MAX_OUTPUT_PER_STEP && this.skip === 0) {
          cuts.push(i);
          this.pendingOutput = 0;
        }
        continue;
      }
      this.header.push(chunk[i]!);
      i++;
      if (this.header.length === this.want) this.onHeader();
    }
    return cuts;
  }

  /** At end of input: the stream must end between frames, after at least one frame. */
  end(): void {
    if (this.frames === 0 || this.state !== 'magic' || this.header.length > 0 || this.skip > 0) {
      throw new Error('zstd stream is truncated');
    }
  }

  private expect(state: State, bytes: number): void {
    this.state = state;
    this.want = bytes;
    this.header = [];
  }

  private onHeader(): void {
    const h = this.header;
    switch (this.state) {
      case 'magic': {
        const magic = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
        if (magic === FRAME_MAGIC) {
          this.expect('frame-header', 1);
          return;
        }
        if (magic >>> 4 === 0x184d2a5) {
          this.expect('skippable-size', 4);
          return;
        }
        throw new Error('not a zstd frame (bad magic number)');
      }
      case 'skippable-size':
        this.skip = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
        this.expect('magic', 4);
        return;
      case 'frame-header': {
        const fhd = h[0]!;
        if (fhd & 0x08) throw new Error('zstd frame header has its reserved bit set');
        this.descriptor = fhd;
        const single = (fhd >> 5) & 1;
        const rest = (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + [single, 2, 4, 8][fhd >> 6]!;
        this.expect('frame-rest', rest);
        return;
      }
      case 'frame-rest':
        this.checkWindow();
        this.frames++;
        this.checksum = ((this.descriptor >> 2) & 1) === 1;
        this.expect('block-header', 3);
        return;
      case 'block-header': {
        const v = h[0]! | (h[1]! << 8) | (h[2]! << 16);
        const type = (v >> 1) & 3;
        const size = v >>> 3;
        this.lastBlock = (v & 1) === 1;
        if (type === 3) throw new Error('zstd block has the reserved type');
        // RLE: one byte expands to `size`; raw: stored as is; compressed: at most one block of output.
        this.skip = type === 1 ? 1 : size;
        this.pendingOutput += type === 2 ? MAX_BLOCK : size;
        this.header = [];
        if (this.skip === 0) this.afterSkip();
        return;
      }
    }
  }

  private checkWindow(): void {
    const fhd = this.descriptor;
    const single = (fhd >> 5) & 1;
    const dictBytes = [0, 1, 2, 4][fhd & 3]!;
    const h = this.header;
    let pos = single ? 0 : 1;
    let dict = 0;
    for (let k = 0; k < dictBytes; k++) dict += h[pos + k]! * 2 ** (8 * k);
    // fzstd has no dictionary support; layers are never made with one.
    if (dict !== 0) throw new Error('zstd frames with a dictionary are not supported');
    pos += dictBytes;
    let window: number;
    if (single) {
      const fcsBytes = [1, 2, 4, 8][fhd >> 6]!;
      window = 0;
      for (let k = 0; k < fcsBytes; k++) window += h[pos + k]! * 2 ** (8 * k);
      if (fcsBytes === 2) window += 256;
    } else {
      const wd = h[0]!;
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    }
    if (window > this.maxWindow) {
      throw new Error(`zstd frame needs a ${window} byte window, over the limit of ${this.maxWindow}`);
    }
  }

  private afterSkip(): void {
    if (this.state !== 'block-header') return; // skippable frame done; 'magic' is already expected
    if (!this.lastBlock) {
      this.expect('block-header', 3);
      return;
    }
    if (this.checksum) {
      this.checksum = false;
      this.skip = 4; // content checksum; the layer digest and DiffID already cover the bytes
    }
    this.expect('magic', 4);
  }
}

/**
 * A pipeline stage: zstd-compressed chunks in, decompressed chunks out, at most a few MiB of output held
 * per step however the input is crafted. Errors name what is wrong with the stream.
 */
export function zstdDecoder(maxWindow = MAX_ZSTD_WINDOW): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function* decode(source) {
    const scanner = new ZstdFrameScanner(maxWindow);
    const out: Buffer[] = [];
    const decoder = new Decompress((data) => {
      // fzstd hands out freshly allocated arrays in streaming mode: wrapping them copies nothing.
      if (data.length > 0) out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
    const push = (bytes: Uint8Array, final: boolean): void => {
      try {
        decoder.push(bytes, final);
      } catch (err) {
        throw new Error(`corrupt zstd data: ${errorMessage(err)}`);
      }
    };
    for await (const chunk of source) {
      let start = 0;
      for (const cut of [...scanner.scan(chunk), chunk.length]) {
        if (cut > start) push(chunk.subarray(start, cut), false);
        start = cut;
        while (out.length > 0) yield out.shift()!;
      }
    }
    scanner.end();
    push(new Uint8Array(0), true);
    while (out.length > 0) yield out.shift()!;
  };
}
