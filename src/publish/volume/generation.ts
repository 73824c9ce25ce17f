/**
 * Writes one new generation directory. Files whose content, mode and group match a file of the current
 * generation are hardlinked to it (no bytes written); the rest are copied from the staging tree. A
 * linked inode is never chmod'ed or chown'ed — that would change the live generation too — so a file
 * whose mode or group must change is copied instead.
 */
import { constants } from 'node:fs';
import { chmod, chown, copyFile, link, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { VolumeFile } from '../../process/types.js';
import { MANIFEST_NAME, fsyncPath, writeDurable } from './layout.js';
import type { FileState } from './state.js';
import { checkpoint, crashPoint, injectedWriteError } from './test-hooks.js';

/** The filesystem calls that tests replace to inject EXDEV or ENOSPC. */
export interface VolumeFsOps {
  link: (existing: string, target: string) => Promise<void>;
  copyFile: (src: string, dest: string, mode: number) => Promise<void>;
}

export const realFsOps: VolumeFsOps = { link, copyFile };

export interface GenerationOptions {
  fileMode: number;
  dirMode: number;
  gid?: number;
  concurrency: number;
  fs: VolumeFsOps;
}

export interface GenerationWriteResult {
  bytesWritten: number;
  linked: number;
  copied: number;
  state: Map<string, FileState>;
}

/** Link errors that mean "this filesystem cannot link here", not "something is wrong". */
const LINK_FALLBACK = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

export async function writeGeneration(
  genDir: string,
  files: VolumeFile[],
  currentDir: string | undefined,
  current: Map<string, FileState>,
  opts: GenerationOptions,
): Promise<GenerationWriteResult> {
  const result: GenerationWriteResult = { bytesWritten: 0, linked: 0, copied: 0, state: new Map() };
  const dirs = new Set<string>([genDir]);
  // Parents first and sequentially: cheap, and the pool below then never races on mkdir.
  for (const f of files) {
    const parts = f.path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = path.join(genDir, ...parts.slice(0, i));
      if (dirs.has(d)) continue;
      await mkdir(d, { mode: opts.dirMode });
      await setOwnership(d, opts.dirMode, opts.gid);
      dirs.add(d);
    }
  }

  await pool(files, opts.concurrency, async (f) => {
    const dest = path.join(genDir, f.path);
    const old = current.get(f.path);
    const reusable = currentDir && old && old.sha256 === f.sha256 && old.mode === opts.fileMode && (opts.gid === undefined || old.gid === opts.gid);
    if (reusable) {
      try {
        await opts.fs.link(path.join(currentDir, f.path), dest);
        result.linked++;
        result.state.set(f.path, old);
        crashPoint('first-file-linked');
        return;
      } catch (err) {
        if (!LINK_FALLBACK.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      }
    }
    injectedWriteError(dest);
    // COPYFILE_EXCL: the generation is brand new, so an existing file here means someone raced us.
    await opts.fs.copyFile(f.source, dest, constants.COPYFILE_EXCL);
    crashPoint('first-file-copied');
    const fh = await open(dest, 'r');
    try {
      await fh.chmod(opts.fileMode);
      if (opts.gid !== undefined) await fh.chown(-1, opts.gid);
      await fh.sync();
      const st = await fh.stat();
      result.state.set(f.path, { sha256: f.sha256, size: st.size, mode: opts.fileMode, gid: st.gid, ino: st.ino, mtimeMs: st.mtimeMs });
    } finally {
      await fh.close();
    }
    crashPoint('first-file-synced');
    result.copied++;
    result.bytesWritten += f.size;
  });
  await checkpoint('files-written');

  await writeDurable(path.join(genDir, MANIFEST_NAME), manifestJson(result.state), opts.fileMode);
  crashPoint('manifest-written');
  // Directories deepest first, so every entry is durable before its parent is.
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) await fsyncPath(d);
  crashPoint('dirs-synced');
  return result;
}

function manifestJson(state: Map<string, FileState>): string {
  const files: Record<string, FileState> = {};
  for (const k of [...state.keys()].sort()) files[k] = state.get(k)!;
  return JSON.stringify({ version: 1, files });
}

async function setOwnership(p: string, mode: number, gid: number | undefined): Promise<void> {
  // mkdir's mode is filtered by the umask; the configured mode is what consumers rely on.
  await chmod(p, mode);
  if (gid !== undefined) await chown(p, -1, gid);
}

/** Run fn over items with at most n in flight: fsync latency overlaps instead of adding up. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
}

