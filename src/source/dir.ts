/**
 * `dir:` sources: a payload already on disk (baked into our image, or a Kubernetes image volume).
 * Resolve hashes the tree; unpack copies it into the staging directory while hashing the very bytes
 * it copies, so the verifier works on a snapshot that provably equals what was resolved.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { SourceError } from '../errors.js';
import { checkPublishableName, checkSymlinkTarget, compareRel, joinRel, printableName, type UnsafeNameError } from './paths.js';
import { absIn, finishTree, staysInside } from './tree.js';
import { SourceNotFoundError, type DirReference, type ResolvedSource, type SourceDriver, type UnpackLimits, type UnpackResult } from './types.js';

type DirRecord = [rel: string, type: 'f' | 'd' | 'l', mode: number, content: string];

interface WalkResult {
  digest: string;
  warnings: string[];
  dirModes: Map<string, number>;
}

/** `limits` bound the resolve walk; the unpack gets its own (the same, from the caller). */
export function dirDriver(ref: DirReference, limits: UnpackLimits): SourceDriver {
  const driver: SourceDriver = {
    resolve: async () => ({ ref, driver, digest: (await walkDir(ref, limits, undefined)).digest, layers: [], annotations: {} }),
    signature: async () => undefined,
    noSignatureReason: () => 'dir: sources carry no image signature',
    unpack: (resolved, root, unpackLimits) => unpackDir(ref, resolved, root, unpackLimits),
  };
  return driver;
}

async function unpackDir(ref: DirReference, resolved: ResolvedSource, root: string, limits: UnpackLimits): Promise<UnpackResult> {
  const walk = await walkDir(ref, limits, root);
  if (walk.digest !== resolved.digest) {
    // The verifier and the up-to-date check must see the same content; a tree that changed in
    // between (an image volume being swapped) is retried on the next run instead.
    throw new SourceError(`${resolved.ref.original} changed between resolve and unpack (${resolved.digest} → ${walk.digest})`);
  }
  const tree = await finishTree(root, walk.dirModes);
  if (tree.escapingLink !== undefined) {
    throw new SourceError(`${resolved.ref.original}: symlink '${tree.escapingLink}' leads outside the tree`);
  }
  return { root, files: tree.files, bytes: tree.bytes, warnings: walk.warnings };
}

/**
 * Digest over the tree: JSON lines of [relative path, type, mode & 0o777, sha256 | link target],
 * sorted by path bytes. JSON keeps it unambiguous for names with newlines; ownership and times are
 * left out because copies (image volumes, `cp -r`) do not keep them and they do not change content.
 */
async function walkDir(ref: DirReference, limits: UnpackLimits, dest: string | undefined): Promise<WalkResult> {
  const src = ref.path;
  const rootStat = await fs.stat(src).catch(() => null);
  if (rootStat === null) throw new SourceNotFoundError(`source not found: ${ref.original}`);
  if (!rootStat.isDirectory()) throw new SourceError(`${ref.original} is not a directory`);

  const records: DirRecord[] = [];
  const warnings: string[] = [];
  const dirModes = new Map<string, number>();
  let bytes = 0;
  const fail = (rel: string, msg: string): SourceError => new SourceError(`${ref.original}: '${printableName(rel)}' ${msg}`);

  const visit = async (dirRel: string): Promise<void> => {
    const entries = await fs.readdir(absIn(src, dirRel), { withFileTypes: true });
    for (const e of entries) {
      const rel = joinRel(dirRel, e.name);
      if (records.length + 1 > limits.maxEntries) throw new SourceError(`${ref.original} has more than ${limits.maxEntries} entries`);
      if (rel.length > limits.maxPathLength) throw fail(rel.slice(0, 100), `is longer than ${limits.maxPathLength} characters`);
      try {
        checkPublishableName(rel);
      } catch (err) {
        throw fail(rel, `is refused: ${(err as UnsafeNameError).message}`);
      }
      const abs = absIn(src, rel);
      const st = await fs.lstat(abs);
      const mode = st.mode & 0o777;
      if (st.isDirectory()) {
        records.push([rel, 'd', mode, '']);
        if (dest !== undefined) {
          await fs.mkdir(absIn(dest, rel), { mode: 0o700 });
          dirModes.set(rel, mode);
        }
        await visit(rel);
      } else if (st.isSymbolicLink()) {
        const target = await fs.readlink(abs);
        // Copied as a link, never followed; one that leads out of the tree is refused outright,
        // because a later stage reading through it would read host files as payload.
        try {
          checkSymlinkTarget(target, limits.maxPathLength);
        } catch (err) {
          throw fail(rel, (err as UnsafeNameError).message);
        }
        if (!(await staysInside(src, dirRel, target))) throw fail(rel, `is a symlink leading outside the tree ('${target}')`);
        records.push([rel, 'l', 0, target]);
        if (dest !== undefined) await fs.symlink(target, absIn(dest, rel));
      } else if (st.isFile()) {
        if (st.size > limits.maxFileBytes) throw fail(rel, `exceeds the ${limits.maxFileBytes} byte file limit`);
        const { sha256, size } = await copyFile(abs, dest === undefined ? undefined : absIn(dest, rel), limits.maxFileBytes, mode);
        bytes += size;
        if (bytes > limits.maxTotalBytes) throw new SourceError(`${ref.original} exceeds the ${limits.maxTotalBytes} byte limit`);
        records.push([rel, 'f', mode, sha256]);
      } else {
        warnings.push(`${ref.original}: skipped special file '${rel}'`);
      }
    }
  };
  await visit('');

  records.sort((a, b) => compareRel(a[0], b[0]));
  const hash = createHash('sha256');
  for (const r of records) hash.update(`${JSON.stringify(r)}\n`);
  return { digest: `sha256:${hash.digest('hex')}`, warnings, dirModes };
}

/** Hashes (and optionally copies) one file, opened without following a link swapped in meanwhile. */
async function copyFile(srcAbs: string, destAbs: string | undefined, maxBytes: number, mode: number): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const input = await fs.open(srcAbs, constants.O_RDONLY | constants.O_NOFOLLOW);
  let output: fs.FileHandle | undefined;
  let size = 0;
  try {
    if (!(await input.stat()).isFile()) throw new SourceError(`${srcAbs} changed while being read`);
    output = destAbs === undefined ? undefined : await fs.open(destAbs, 'wx', 0o600);
    const buf = Buffer.alloc(256 * 1024);
    for (;;) {
      const { bytesRead } = await input.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      size += bytesRead;
      if (size > maxBytes) throw new SourceError(`${srcAbs} exceeds the ${maxBytes} byte file limit`);
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      if (output !== undefined) await output.write(chunk);
    }
    if (output !== undefined) await output.chmod(mode);
  } finally {
    await input.close();
    await output?.close();
  }
  return { sha256: hash.digest('hex'), size };
}
