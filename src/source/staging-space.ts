/**
 * Room in the file system the payload is staged in. The byte caps alone do not fit the place: the
 * CronJob stages on a memory-backed /tmp of a few dozen MiB, so a layer of zeros well under the caps
 * would fill it and end as a confusing "entry is truncated". The free space is taken from statfs
 * before the first byte and asked again whenever the writes so far would use it up, so the unpack
 * stops *before* the file system is full, with a message that names the staging area, not the image.
 */
import { statfsSync } from 'node:fs';
import { SourceError } from '../errors.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export const STAGING_HINT =
  "the payload is staged under TMPDIR; give it more room: raise sizeLimit of the CronJob's /tmp emptyDir (manifests/base/cronjob.yaml, with the memory limit beside it), or point TMPDIR at a larger file system";

interface Measure {
  /** Bytes available to us (f_bavail × f_bsize). */
  free: number;
  blockSize: number;
  /** Free inodes, or Infinity where the file system does not count them. */
  inodes: number;
}

function measure(dir: string): Measure {
  const s = statfsSync(dir);
  return { free: s.bavail * s.bsize, blockSize: s.bsize > 0 ? s.bsize : 4096, inodes: s.files > 0 ? s.ffree : Infinity };
}

export class StagingSpace {
  /** Bytes reserved (rounded up to whole blocks) since the unpack began, and since the last statfs. */
  private needed = 0;
  private sinceMeasure = 0;
  private inodesSinceMeasure = 0;
  private readonly initialFree: number;
  private current: Measure;

  constructor(private readonly dir: string) {
    this.current = measure(dir);
    this.initialFree = this.current.free;
  }

  /** Accounts for a file of `size` bytes about to be written; throws when it would not fit. */
  reserve(size: number): void {
    const blocks = Math.ceil(size / this.current.blockSize) * this.current.blockSize;
    this.needed += blocks;
    this.sinceMeasure += blocks;
    if (this.sinceMeasure > this.current.free) {
      // Asked again rather than trusted: other writers (or freed space) may have changed the answer.
      this.current = measure(this.dir);
      this.sinceMeasure = blocks;
      if (blocks > this.current.free) throw this.full();
    }
  }

  /** Accounts for one inode (every entry creates at most one). */
  reserveInode(): void {
    if (++this.inodesSinceMeasure <= this.current.inodes) return;
    this.current = measure(this.dir);
    this.inodesSinceMeasure = 1;
    if (this.current.inodes < 1) {
      throw new SourceError(`staging area full: no free inodes left in ${this.dir}`, STAGING_HINT);
    }
  }

  /** The error for a full staging area; with `cause`, the write that hit ENOSPC anyway. */
  full(cause?: unknown): SourceError {
    const enospc = cause === undefined ? '' : ` (${(cause as NodeJS.ErrnoException).code ?? 'ENOSPC'}: no space left on device)`;
    return new SourceError(
      `staging area full: needed at least ${formatBytes(this.needed)}, ${formatBytes(this.initialFree)} free in ${this.dir}${enospc}`,
      STAGING_HINT,
      cause === undefined ? undefined : { cause },
    );
  }
}
