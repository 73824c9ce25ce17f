/**
 * Applies the entries of one layer tar to the staging tree. Every entry passes the pure name checks
 * of paths.ts and the tree-state checks of tree.ts before anything is created, removed or linked.
 */
import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import fs from 'node:fs/promises';
import type tar from 'tar-stream';
import { errorMessage, SourceError } from '../errors.js';
import type { UnpackLimits } from './types.js';
import {
  ancestorsOf,
  checkSymlinkTarget,
  classifyWhiteout,
  joinRel,
  normalizeEntryName,
  parentOf,
  UnsafeNameError,
} from './paths.js';
import {
  absIn,
  checkAncestors,
  isNoEnt,
  type KnownDirs,
  lstatOrNull,
  removePath,
  staysInside,
  whiteoutParentExists,
} from './tree.js';

/** State shared by all layers of one unpack: caps are for the whole image, not per layer. */
export interface UnpackState {
  root: string;
  limits: UnpackLimits;
  entries: number;
  /** Sum of regular-file sizes written. */
  bytes: number;
  /** Decompressed tar bytes read (headers, padding and all): bounds a gzip bomb of padding. */
  tarBytes: number;
  /** Wanted directory modes, applied after the last layer (see finishTree). */
  dirModes: Map<string, number>;
  /** Directories already checked to be real ones (see tree.ts); emptied by every removal. */
  knownDirs: KnownDirs;
  warnings: string[];
}

/** One tar entry as tar-stream yields it (its `Source` type is not exported). */
export type TarEntry = AsyncIterable<unknown> & { header: tar.Header };

const WRITE_BATCH_BYTES = 1024 * 1024;
/**
 * Files up to this size are gathered in memory and written with synchronous calls: for the thousands
 * of small files of a typical payload, four thread-pool round trips (open, write, chmod, close) per
 * file cost more than the system calls themselves.
 */
const SMALL_FILE_BYTES = 256 * 1024;

/** Applies tar entries of one layer; remembers what this layer created for opaque whiteouts. */
export class EntryApplier {
  /** Paths this layer created or touched, with their ancestors: an opaque marker keeps those. */
  private readonly touched = new Set<string>(['']);
  private last: { end: number; paddedEnd: number; complete: boolean } | null = null;
  strippedModes = 0;

  constructor(
    private readonly state: UnpackState,
    private readonly layerDigest: string,
  ) {}

  endsCleanly(tarBytes: number): boolean {
    const last = this.last;
    return last !== null && last.complete && tarBytes >= last.end && tarBytes <= last.paddedEnd;
  }

  async apply(entry: TarEntry): Promise<void> {
    const h = entry.header;
    // tar-stream 3 records where the entry's data starts (not in its types). Without it we simply
    // do not tolerate a missing end marker, which fails closed.
    const offset = (h as { byteOffset?: number }).byteOffset;
    const size = h.size ?? 0;
    this.last =
      typeof offset === 'number'
        ? { end: offset + size, paddedEnd: offset + Math.ceil(size / 512) * 512, complete: false }
        : null;
    try {
      await this.applyChecked(entry);
    } catch (err) {
      if (err instanceof UnsafeNameError) {
        throw new SourceError(`layer ${this.layerDigest}: refusing entry '${printable(h.name)}': ${err.message}`);
      }
      if (err instanceof SourceError) throw err;
      throw new SourceError(
        `layer ${this.layerDigest}: cannot apply entry '${printable(h.name)}': ${errorMessage(err)}`,
      );
    }
    if (this.last) this.last.complete = true;
  }

  private async applyChecked(entry: TarEntry): Promise<void> {
    const h = entry.header;
    const { limits } = this.state;
    if (++this.state.entries > limits.maxEntries) {
      throw new SourceError(`layer ${this.layerDigest}: more than ${limits.maxEntries} entries in the image`);
    }
    const rel = normalizeEntryName(h.name, limits.maxPathLength);
    const wh = classifyWhiteout(rel);
    if (wh !== null) {
      await drain(entry);
      if (wh.kind === 'opaque') await this.opaque(wh.dir);
      else if (wh.kind === 'whiteout') await this.whiteout(wh.target);
      return;
    }
    const mode = h.mode ?? 0o644;
    if ((mode & 0o7000) !== 0) this.strippedModes++;
    const perm = mode & 0o777;

    switch (h.type) {
      case 'file':
      case 'contiguous-file':
        return this.file(entry, rel, perm);
      case 'directory':
        await drain(entry);
        return this.directory(rel, perm);
      case 'symlink':
        await drain(entry);
        return this.symlink(rel, h.linkname ?? '');
      case 'link':
        await drain(entry);
        return this.hardlink(rel, h.linkname ?? '');
      case 'character-device':
      case 'block-device':
      case 'fifo':
        // Device nodes in a payload are never legitimate data and could expose host devices.
        await drain(entry);
        this.state.warnings.push(`layer ${this.layerDigest}: skipped ${h.type} '${printable(h.name)}'`);
        return;
      default:
        throw new UnsafeNameError(`unsupported entry type ${String(h.type)}`);
    }
  }

  /** Records `rel` and its ancestors as coming from this layer. */
  private touch(rel: string): void {
    this.touched.add(rel);
    for (const a of ancestorsOf(rel)) this.touched.add(a);
  }

  /** Makes room for a new non-directory at `rel`: parents exist and are real directories. */
  private async prepare(rel: string): Promise<string> {
    if (rel === '') throw new UnsafeNameError('entry replaces the root directory');
    await checkAncestors(this.state.root, rel, true, this.state.knownDirs);
    const abs = absIn(this.state.root, rel);
    // Remove first and create with O_EXCL afterwards: we never open, chmod or link *through* an
    // existing name, which might be a symlink a lower layer planted.
    await this.remove(abs);
    this.touch(rel);
    return abs;
  }

  /** Every removal goes through here: it may turn a known directory into nothing (or, next, a link). */
  private async remove(abs: string): Promise<void> {
    this.state.knownDirs.clear();
    await removePath(abs);
  }

  /**
   * Creates a regular file with O_CREAT|O_EXCL, which never follows a symlink at the final name. In a
   * fresh tree the name is usually free, so the removal `prepare` does (an lstat at least) is only
   * paid when something is already there.
   */
  private async createFile(rel: string): Promise<fs.FileHandle> {
    if (rel === '') throw new UnsafeNameError('entry replaces the root directory');
    await checkAncestors(this.state.root, rel, true, this.state.knownDirs);
    const abs = absIn(this.state.root, rel);
    try {
      const fh = await fs.open(abs, 'wx', 0o600);
      this.touch(rel);
      return fh;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await this.prepare(rel);
    return fs.open(abs, 'wx', 0o600);
  }

  private async file(entry: TarEntry, rel: string, perm: number): Promise<void> {
    const size = entry.header.size ?? 0;
    const { limits } = this.state;
    // Header sizes are a cheap early check, before a single byte lands on disk.
    if (size > limits.maxFileBytes) throw new UnsafeNameError(`file of ${size} bytes exceeds the ${limits.maxFileBytes} byte limit`);
    if (this.state.bytes + size > limits.maxTotalBytes) {
      throw new SourceError(`layer ${this.layerDigest}: image content exceeds the ${limits.maxTotalBytes} byte limit`);
    }
    this.state.bytes += size;
    if (size <= SMALL_FILE_BYTES) return this.smallFile(entry, rel, perm, size);
    const fh = await this.createFile(rel);
    let written = 0;
    // Chunks are gathered and written together: one thread-pool round trip per MiB, not per 16 KiB.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      const batch = pending;
      pending = [];
      pendingBytes = 0;
      await fh.writev(batch);
    };
    try {
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        written += chunk.length;
        pending.push(chunk);
        pendingBytes += chunk.length;
        // Also by count: a trickle of tiny chunks must not become one huge iovec list.
        if (pendingBytes >= WRITE_BATCH_BYTES || pending.length >= 256) await flush();
      }
      await flush();
      await fh.chmod(perm);
    } catch (err) {
      throw new SourceError(`layer ${this.layerDigest}: entry '${printable(entry.header.name)}' is truncated`, undefined, { cause: err });
    } finally {
      await fh.close();
    }
    if (written !== size) {
      throw new SourceError(`layer ${this.layerDigest}: entry '${printable(entry.header.name)}' is truncated`);
    }
  }

  /**
   * A small file: its bytes are gathered first (at most SMALL_FILE_BYTES), then it is created with
   * O_CREAT|O_EXCL (never following a symlink at the name, like createFile) and written, chmod-ed and
   * closed with synchronous calls on the descriptor.
   */
  private async smallFile(entry: TarEntry, rel: string, perm: number, size: number): Promise<void> {
    const chunks: Buffer[] = [];
    let written = 0;
    try {
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        written += chunk.length;
        if (written > size) break;
        chunks.push(chunk);
      }
    } catch (err) {
      throw new SourceError(`layer ${this.layerDigest}: entry '${printable(entry.header.name)}' is truncated`, undefined, { cause: err });
    }
    if (written !== size) {
      throw new SourceError(`layer ${this.layerDigest}: entry '${printable(entry.header.name)}' is truncated`);
    }
    if (rel === '') throw new UnsafeNameError('entry replaces the root directory');
    await checkAncestors(this.state.root, rel, true, this.state.knownDirs);
    const abs = absIn(this.state.root, rel);
    let fd: number;
    try {
      fd = openSync(abs, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      await this.prepare(rel);
      fd = openSync(abs, 'wx', 0o600);
    }
    this.touch(rel);
    try {
      for (const chunk of chunks) {
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
      }
      fchmodSync(fd, perm);
    } finally {
      closeSync(fd);
    }
  }

  private async directory(rel: string, perm: number): Promise<void> {
    if (rel === '') return; // `./`: the staging root is ours, its mode is not the image's business
    await checkAncestors(this.state.root, rel, true, this.state.knownDirs);
    const abs = absIn(this.state.root, rel);
    const st = await lstatOrNull(abs);
    if (st === null || !st.isDirectory()) {
      await this.remove(abs); // a file or symlink replaced by a directory
      await fs.mkdir(abs);
    }
    this.state.knownDirs.add(rel);
    // Owner-writable until the end, so later entries and whiteouts can still change it.
    await fs.chmod(abs, perm | 0o700);
    this.state.dirModes.set(rel, perm);
    this.touch(rel);
  }

  private async symlink(rel: string, target: string): Promise<void> {
    checkSymlinkTarget(target, this.state.limits.maxPathLength);
    await checkAncestors(this.state.root, rel, true, this.state.knownDirs);
    if (!(await staysInside(this.state.root, parentOf(rel), target))) {
      throw new UnsafeNameError(`symlink target '${printable(target)}' leads outside the image`);
    }
    const abs = await this.prepare(rel);
    await fs.symlink(target, abs);
  }

  private async hardlink(rel: string, linkname: string): Promise<void> {
    // Hardlink targets are archive names (relative to the root), not relative to the entry.
    const target = normalizeEntryName(linkname, this.state.limits.maxPathLength);
    if (target === '' || target === rel) throw new UnsafeNameError(`bad hardlink target '${printable(linkname)}'`);
    // The target's parents must be real directories too, or `link` would resolve through a symlink
    // and hard-link a file from outside the tree (e.g. /etc/shadow) into it.
    const reachable = await checkAncestors(this.state.root, target, false, this.state.knownDirs);
    const st = reachable ? await lstatOrNull(absIn(this.state.root, target)) : null;
    if (st === null || !st.isFile()) {
      throw new UnsafeNameError(`hardlink target '${printable(linkname)}' is not a regular file in the image`);
    }
    const abs = await this.prepare(rel);
    await fs.link(absIn(this.state.root, target), abs);
  }

  /** `.wh.NAME`: removes NAME as it came from lower layers. */
  private async whiteout(target: string): Promise<void> {
    if (!(await whiteoutParentExists(this.state.root, target))) return; // nothing below to hide
    const abs = absIn(this.state.root, target);
    if (!this.touched.has(target)) {
      await this.remove(abs);
      return;
    }
    // Whiteouts only hide lower layers; what this layer itself wrote there stays.
    const st = await lstatOrNull(abs);
    if (st?.isDirectory()) await this.clearLower(target);
  }

  /** `.wh..wh..opq`: the directory keeps only this layer's content, even entries seen before it. */
  private async opaque(dir: string): Promise<void> {
    await checkAncestors(this.state.root, joinRel(dir, 'x'), true, this.state.knownDirs);
    const abs = absIn(this.state.root, dir);
    const st = await lstatOrNull(abs);
    if (st === null || !st.isDirectory()) {
      await this.remove(abs);
      await fs.mkdir(abs, { mode: 0o755 });
    }
    this.touch(dir);
    await this.clearLower(dir);
  }

  private async clearLower(dir: string): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(absIn(this.state.root, dir));
    } catch (err) {
      if (isNoEnt(err)) return;
      throw err;
    }
    for (const name of names) {
      const rel = joinRel(dir, name);
      const abs = absIn(this.state.root, rel);
      if (!this.touched.has(rel)) await this.remove(abs);
      else if ((await lstatOrNull(abs))?.isDirectory()) await this.clearLower(rel);
    }
  }
}

async function drain(entry: TarEntry): Promise<void> {
  for await (const _chunk of entry as AsyncIterable<Buffer>) {
    // discard: directories, links and whiteouts carry no data, but the stream must be consumed
  }
}

/** Entry names are attacker-chosen; keep them on one line in messages and logs. */
function printable(s: string): string {
  const clean = s.replace(/[\0-\x1f\x7f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}
