/**
 * What a generation holds. Two readers:
 *
 * - readGeneration: every regular file with its lstat; the generation's manifest (manifest.ts) gives
 *   the sha256 of a file whose lstat still shows the recorded inode, size and mtime, any other file is
 *   hashed again. One walk and one lstat per file, nothing read. Used for the plan, the no-op decision
 *   and rollback.
 * - readReuseCandidates: what a republish may hardlink. Just the manifest, because each link is checked
 *   against it right after it is made (generation.ts); without a valid manifest, readGeneration.
 *
 * Metadata calls here are synchronous on purpose: thousands of tiny syscalls cost far more as
 * thread-pool round trips than as direct calls, and a publishing run has nothing else to do meanwhile.
 */
import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PublishError } from '../../errors.js';
import { sha256File } from '../../util/fs.js';
import { readManifest, type Manifest, type ManifestEntry } from './manifest.js';

export interface FileState {
  sha256: string;
  size: number;
  mode: number;
  gid: number;
  ino: number;
  mtimeMs: number;
}

export interface GenerationState {
  files: Map<string, FileState>;
  /** The manifest as read, for reusing its unchanged buckets; absent when missing or invalid. */
  manifest?: Manifest;
}

export interface ReuseCandidates {
  files: Map<string, ManifestEntry>;
  manifest?: Manifest;
  /** Set when there was no usable manifest and the generation had to be walked (and hashed) already. */
  walked?: GenerationState;
}

export async function readReuseCandidates(genDir: string): Promise<ReuseCandidates> {
  if (!isGenerationDir(genDir)) return { files: new Map() };
  const manifest = readManifest(genDir);
  if (manifest) return { files: manifest.entries, manifest };
  const walked = await walkGeneration(genDir, undefined);
  return { ...walked, walked };
}

/** The generation's files as they are on disk, reusing what readReuseCandidates already read. */
export async function currentGenerationState(genDir: string, candidates: ReuseCandidates): Promise<GenerationState> {
  if (candidates.walked) return candidates.walked;
  return isGenerationDir(genDir) ? walkGeneration(genDir, candidates.manifest) : { files: new Map() };
}

/**
 * A generation is a directory we made. A symlink in its place (even with a generation's name) could
 * lead the walk, and then the hardlinks, to any file on the node; it is refused, not followed. A
 * missing one (..data dangling) reads as empty; the next publish repairs it.
 */
function isGenerationDir(genDir: string): boolean {
  const root = lstatSync(genDir, { throwIfNoEntry: false });
  if (!root) return false;
  if (!root.isDirectory()) throw new PublishError(`${genDir} is not a directory; refusing to read a generation that zeta-provision did not create`);
  return true;
}

export async function readGeneration(genDir: string): Promise<GenerationState> {
  return isGenerationDir(genDir) ? walkGeneration(genDir, readManifest(genDir)) : { files: new Map() };
}

/** Every regular file's state; hashes come from the manifest where size, inode and mtime still match. */
async function walkGeneration(genDir: string, manifest: Manifest | undefined): Promise<GenerationState> {
  const files = new Map<string, FileState>();
  for (const rel of walkFiles(genDir)) {
    const abs = path.join(genDir, rel);
    const st = lstatSync(abs);
    if (!st.isFile()) continue;
    const known = manifest?.entries.get(rel);
    const trusted = known && known.size === st.size && known.ino === st.ino && known.mtimeMs === st.mtimeMs;
    files.set(rel, {
      sha256: trusted ? known.sha256 : await sha256File(abs),
      size: st.size,
      mode: st.mode & 0o7777,
      gid: st.gid,
      ino: st.ino,
      mtimeMs: st.mtimeMs,
    });
  }
  return { files, manifest };
}

/** Regular files of a generation (path → state). */
export async function readGenerationState(genDir: string): Promise<Map<string, FileState>> {
  return (await readGeneration(genDir)).files;
}

/**
 * Relative paths of regular files, from readdir's d_type, without following links: a symlink someone
 * put into a generation is neither read nor reused, and a symlinked directory is not entered. Names
 * starting with `..` at the top (the manifest) are ours, not payload.
 */
function walkFiles(root: string): string[] {
  const out: string[] = [];
  const visit = (rel: string): void => {
    for (const d of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      if (!rel && d.name.startsWith('..')) continue;
      const childRel = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) visit(childRel);
      else if (d.isFile()) out.push(childRel);
    }
  };
  visit('');
  return out.sort();
}
