/**
 * Applies the entries of one layer tar to the staging tree. Every entry passes the pure name checks of
 * paths.ts and the checks against the tree as built so far (path-tree.ts) before anything is created,
 * removed or linked. Per entry the work is proportional to its name's length, whatever the depth.
 */
import { closeSync, fchmodSync, linkSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import fs from 'node:fs/promises';
import type tar from 'tar-stream';
import { errorMessage, SourceError } from '../errors.js';
import type { UnpackLimits } from './types.js';
import { checkPublishableName, checkSymlinkTarget, classifyWhiteout, joinRel, normalizeEntryName, printableName, UnsafeNameError } from './paths.js';
import { fileCode, fileSize, isDir, layerOf, type DirNode, type PathTree } from './path-tree.js';
import { isNoSpace } from '../util/fs.js';
import type { StagingSpace } from './staging-space.js';

/** State shared by all layers of one unpack: caps are for the whole image, not per layer. */
export interface UnpackState {
  root: string;
  limits: UnpackLimits;
  /** Entries seen, plus parent directories the tar implied: every inode the unpack may create counts. */
  entries: number;
  /** Sum of regular-file sizes written. */
  bytes: number;
  /** Decompressed tar bytes read (headers, padding and all): bounds a gzip bomb of padding. */
  tarBytes: number;
  /** The staging tree as built so far (see path-tree.ts). */
  tree: PathTree;
  /** Room left in the staging file system (see staging-space.ts). */
  space: StagingSpace;
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

/** Applies the tar entries of one layer (`layer` is its 0-based position). */
export class EntryApplier {
  private last: { end: number; paddedEnd: number; complete: boolean } | null = null;
  strippedModes = 0;

  constructor(
    private readonly state: UnpackState,
    private readonly layerDigest: string,
    private readonly layer: number,
    /** The type byte of the header just parsed (tar-stream reports unknown types as null). */
    private readonly typeByte: () => number | undefined = () => undefined,
  ) {}

  endsCleanly(tarBytes: number): boolean {
    const last = this.last;
    return last?.complete === true && tarBytes >= last.end && tarBytes <= last.paddedEnd;
  }

  async apply(entry: TarEntry): Promise<void> {
    const h = entry.header;
    // tar-stream 3 records where the entry's data starts (not in its types). Without it we simply
    // do not tolerate a missing end marker, which fails closed.
    const offset = (h as { byteOffset?: number }).byteOffset;
    const size = h.size ?? 0;
    this.last = typeof offset === 'number' ? { end: offset + size, paddedEnd: offset + Math.ceil(size / 512) * 512, complete: false } : null;
    try {
      await this.applyChecked(entry);
    } catch (err) {
      if (err instanceof UnsafeNameError) {
        throw new SourceError(`layer ${this.layerDigest}: refusing entry '${printableName(h.name)}': ${err.message}`);
      }
      if (err instanceof SourceError) throw err;
      // A directory, link or inode that no longer fits: the staging area is full, not the image bad.
      if (isNoSpace(err)) throw this.state.space.full(err);
      throw new SourceError(`layer ${this.layerDigest}: cannot apply entry '${printableName(h.name)}': ${describeIoError(err)}`, undefined, { cause: err });
    }
    if (this.last) this.last.complete = true;
  }

  private countEntry(): void {
    const { limits } = this.state;
    if (++this.state.entries > limits.maxEntries) {
      throw new SourceError(`layer ${this.layerDigest}: more than ${limits.maxEntries} entries in the image (entry cap)`);
    }
    this.state.space.reserveInode();
  }

  private async applyChecked(entry: TarEntry): Promise<void> {
    const h = entry.header;
    this.countEntry();
    const rel = normalizeEntryName(h.name, this.state.limits.maxPathLength);
    checkPublishableName(rel);
    // The kernel refuses longer paths (ENAMETOOLONG); say so before creating anything.
    if (this.state.root.length + 1 + rel.length >= PATH_MAX)
      throw new UnsafeNameError(`path longer than the system limit of ${PATH_MAX} bytes in the staging directory`);
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
        this.state.warnings.push(`layer ${this.layerDigest}: skipped ${h.type} '${printableName(h.name)}'`);
        return;
      default:
        throw new UnsafeNameError(`unsupported entry type ${describeType(h.type, this.typeByte())}`);
    }
  }

  private abs(rel: string): string {
    return rel === '' ? this.state.root : `${this.state.root}/${rel}`;
  }

  /**
   * The parent directory of `rel` in the tree, its missing ancestors created (mode 0755, the implicit
   * directories of the tar; each one counts as an entry). Refuses symlinked or file parents.
   */
  private parentOf(rel: string): { parent: DirNode; name: string } {
    if (rel === '') throw new UnsafeNameError('entry replaces the root directory');
    const slash = rel.lastIndexOf('/');
    const parent = this.state.tree.dir(slash === -1 ? '' : rel.slice(0, slash), this.layer, (prefix) => {
      this.countEntry();
      mkdirSync(this.abs(prefix), 0o755);
    })!;
    return { parent, name: rel.slice(slash + 1) };
  }

  /**
   * Removes `name` (file, symlink itself, or whole subtree) from disk and tree; never follows links.
   * Whatever was below it is forgotten with it, so no later entry can lean on a directory that is gone.
   */
  private async remove(parent: DirNode, name: string, rel: string): Promise<void> {
    this.state.tree.delete(parent, name);
    await fs.rm(this.abs(rel), { recursive: true, force: true });
  }

  /** Makes room for a new entry at `rel`: whatever a lower layer (or this one) put there goes. */
  private async vacate(parent: DirNode, name: string, rel: string): Promise<void> {
    if (parent.children.has(name)) await this.remove(parent, name, rel);
  }

  private async file(entry: TarEntry, rel: string, perm: number): Promise<void> {
    const size = entry.header.size ?? 0;
    const { limits } = this.state;
    // Header sizes are a cheap early check, before a single byte lands on disk.
    if (size > limits.maxFileBytes) {
      throw new SourceError(
        `layer ${this.layerDigest}: refusing entry '${printableName(entry.header.name)}': file of ${size} bytes exceeds the ${limits.maxFileBytes} byte limit`,
        CAP_HINT,
      );
    }
    if (this.state.bytes + size > limits.maxTotalBytes) {
      throw new SourceError(`layer ${this.layerDigest}: image content exceeds the ${limits.maxTotalBytes} byte limit (total size cap)`, CAP_HINT);
    }
    this.state.space.reserve(size);
    this.state.bytes += size;
    if (size <= SMALL_FILE_BYTES) return this.smallFile(entry, rel, perm, size);
    const { parent, name } = this.parentOf(rel);
    await this.vacate(parent, name, rel);
    // O_CREAT|O_EXCL never follows a symlink at the final name; the name was just vacated.
    const fh = await fs.open(this.abs(rel), 'wx', 0o600);
    this.state.tree.set(parent, name, fileCode(size, this.layer), rel);
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
      if (isNoSpace(err)) throw this.state.space.full(err);
      throw new SourceError(`layer ${this.layerDigest}: entry '${printableName(entry.header.name)}' is truncated`, undefined, { cause: err });
    } finally {
      await fh.close();
    }
    if (written !== size) {
      throw new SourceError(`layer ${this.layerDigest}: entry '${printableName(entry.header.name)}' is truncated`);
    }
  }

  /**
   * A small file: its bytes are gathered first (at most SMALL_FILE_BYTES), then it is created with
   * O_CREAT|O_EXCL (never following a symlink at the name) and written, chmod-ed and closed with
   * synchronous calls on the descriptor.
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
      throw new SourceError(`layer ${this.layerDigest}: entry '${printableName(entry.header.name)}' is truncated`, undefined, { cause: err });
    }
    if (written !== size) {
      throw new SourceError(`layer ${this.layerDigest}: entry '${printableName(entry.header.name)}' is truncated`);
    }
    const { parent, name } = this.parentOf(rel);
    await this.vacate(parent, name, rel);
    const fd = openSync(this.abs(rel), 'wx', 0o600);
    this.state.tree.set(parent, name, fileCode(size, this.layer), rel);
    try {
      for (const chunk of chunks) {
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
      }
      fchmodSync(fd, perm);
    } catch (err) {
      if (isNoSpace(err)) throw this.state.space.full(err);
      throw err;
    } finally {
      closeSync(fd);
    }
  }

  private async directory(rel: string, perm: number): Promise<void> {
    if (rel === '') return; // `./`: the staging root is ours, its mode is not the image's business
    const { parent, name } = this.parentOf(rel);
    let node = parent.children.get(name);
    if (!isDir(node)) {
      await this.vacate(parent, name, rel); // a file or symlink replaced by a directory
      // Owner-writable until the end, so later entries and whiteouts can still change it.
      mkdirSync(this.abs(rel), perm | 0o700);
      node = { children: new Map(), layer: this.layer, mode: perm };
      this.state.tree.set(parent, name, node, rel);
      return;
    }
    node.layer = this.layer;
    node.mode = perm;
  }

  private async symlink(rel: string, target: string): Promise<void> {
    checkSymlinkTarget(target, this.state.limits.maxPathLength);
    const { parent, name } = this.parentOf(rel);
    const slash = rel.lastIndexOf('/');
    if (!this.state.tree.staysInside(slash === -1 ? '' : rel.slice(0, slash), target)) {
      throw new UnsafeNameError(`symlink target '${printableName(target)}' leads outside the image`);
    }
    await this.vacate(parent, name, rel);
    symlinkSync(target, this.abs(rel));
    this.state.tree.set(parent, name, { target, layer: this.layer }, rel);
  }

  private async hardlink(rel: string, linkname: string): Promise<void> {
    // Hardlink targets are archive names (relative to the root), not relative to the entry.
    const target = normalizeEntryName(linkname, this.state.limits.maxPathLength);
    if (target === '' || target === rel) throw new UnsafeNameError(`bad hardlink target '${printableName(linkname)}'`);
    // The target's parents must be real directories too, or `link` would resolve through a symlink
    // and hard-link a file from outside the tree (e.g. /etc/shadow) into it.
    const found = this.state.tree.find(target);
    const node = found?.node;
    if (node === undefined || typeof node !== 'number') {
      throw new UnsafeNameError(`hardlink target '${printableName(linkname)}' is not a regular file in the image`);
    }
    const { parent, name } = this.parentOf(rel);
    await this.vacate(parent, name, rel);
    linkSync(this.abs(target), this.abs(rel));
    this.state.tree.set(parent, name, fileCode(fileSize(node), this.layer), rel);
  }

  /** `.wh.NAME`: removes NAME as it came from lower layers. */
  private async whiteout(target: string): Promise<void> {
    const found = this.state.tree.find(target);
    if (found === undefined || found.node === undefined) return; // nothing below to hide
    if (layerOf(found.node) !== this.layer) return this.remove(found.parent, found.name, target);
    // Whiteouts only hide lower layers; what this layer itself wrote there stays.
    if (isDir(found.node)) await this.clearLower(found.node, target);
  }

  /** `.wh..wh..opq`: the directory keeps only this layer's content, even entries seen before it. */
  private async opaque(dirRel: string): Promise<void> {
    let node: DirNode;
    if (dirRel === '') {
      node = this.state.tree.top;
    } else {
      const { parent, name } = this.parentOf(dirRel);
      const existing = parent.children.get(name);
      if (isDir(existing)) {
        node = existing;
      } else {
        await this.vacate(parent, name, dirRel);
        mkdirSync(this.abs(dirRel), 0o755);
        node = { children: new Map(), layer: this.layer, mode: -1 };
        this.state.tree.set(parent, name, node, dirRel);
      }
      node.layer = this.layer;
    }
    await this.clearLower(node, dirRel);
  }

  private async clearLower(dir: DirNode, dirRel: string): Promise<void> {
    for (const [name, child] of dir.children) {
      const rel = joinRel(dirRel, name);
      if (layerOf(child) !== this.layer) await this.remove(dir, name, rel);
      else if (isDir(child)) await this.clearLower(child, rel);
    }
  }
}

const CAP_HINT =
  'a payload this large needs --max-payload-mib (ZETA_PROVISION_MAX_PAYLOAD_MIB), and a staging /tmp that holds it (the emptyDir sizeLimit in the CronJob)';

/** Linux's PATH_MAX, including the terminating NUL. */
const PATH_MAX = 4096;

async function drain(entry: TarEntry): Promise<void> {
  for await (const _chunk of entry as AsyncIterable<Buffer>) {
    // discard: directories, links and whiteouts carry no data, but the stream must be consumed
  }
}

/** tar-stream calls types it does not know `null`; the byte itself tells the operator what it was. */
function describeType(type: string | null | undefined, byte: number | undefined): string {
  if (type !== null && type !== undefined) return `'${type}'`;
  if (byte === undefined) return '(type byte not available)';
  const ch = byte >= 0x21 && byte < 0x7f ? ` '${String.fromCharCode(byte)}'` : '';
  return `byte 0x${byte.toString(16).padStart(2, '0')}${ch}`;
}

function describeIoError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENAMETOOLONG') return 'name too long for the file system (ENAMETOOLONG)';
  return errorMessage(err);
}
