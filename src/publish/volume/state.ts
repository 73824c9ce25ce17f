/**
 * What a generation holds. Each generation carries a manifest (path → sha256, size, mode and the inode
 * and mtime it was written with), so a republish of 10,000 files hashes nothing it already has. The
 * manifest is only trusted for a file whose lstat still matches; anything else is hashed again.
 */
import { lstat, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { sha256File } from '../../util/fs.js';
import { MANIFEST_NAME } from './layout.js';

export interface FileState {
  sha256: string;
  size: number;
  mode: number;
  gid: number;
  ino: number;
  mtimeMs: number;
}

interface Manifest {
  version: 1;
  files: Record<string, FileState>;
}

export async function readManifest(genDir: string): Promise<Record<string, FileState>> {
  try {
    const parsed = JSON.parse(await readFile(path.join(genDir, MANIFEST_NAME), 'utf8')) as Partial<Manifest>;
    return parsed.version === 1 && parsed.files && typeof parsed.files === 'object' ? parsed.files : {};
  } catch {
    return {};
  }
}

/**
 * Regular files of a generation, found by walking it without following links (a symlink someone put
 * into a generation is neither read nor reused).
 */
export async function readGenerationState(genDir: string): Promise<Map<string, FileState>> {
  const manifest = await readManifest(genDir);
  const state = new Map<string, FileState>();
  // ..data pointing at a missing directory reads as an empty generation; the next publish repairs it.
  const entries = await walkFiles(genDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const rel of entries) {
    if (rel === MANIFEST_NAME) continue;
    const abs = path.join(genDir, rel);
    const st = await lstat(abs);
    if (!st.isFile()) continue;
    const known = manifest[rel];
    const trusted = known && known.size === st.size && known.ino === st.ino && known.mtimeMs === st.mtimeMs;
    state.set(rel, {
      sha256: trusted ? known.sha256 : await sha256File(abs),
      size: st.size,
      mode: st.mode & 0o7777,
      gid: st.gid,
      ino: st.ino,
      mtimeMs: st.mtimeMs,
    });
  }
  return state;
}

/**
 * Relative paths of non-directory entries, from readdir's d_type: one lstat per file (by the caller)
 * instead of two, which is most of a 10,000-file republish. Symlinked directories are not entered.
 */
async function walkFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    for (const d of await readdir(path.join(root, rel), { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) await visit(childRel);
      else if (d.isFile()) out.push(childRel);
    }
  };
  await visit('');
  return out.sort();
}
