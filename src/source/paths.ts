/**
 * Pure checks on names that come from untrusted archives. Everything that decides whether a tar
 * entry may touch the staging tree lives here so it can be unit-tested without a file system.
 */

/** A name or link target that must not be applied; the caller adds layer and entry context. */
export class UnsafeNameError extends Error {}

/**
 * Turns a tar entry name into a clean tree-relative path (`a/b/c`, `''` for the root).
 * Refuses instead of "fixing" hostile names: silently stripping a leading `/` or `..` (as GNU tar
 * does) would still write the file somewhere the image author did not intend, and an image that
 * needs such names is not a provisioning payload.
 */
export function normalizeEntryName(name: string, maxLength: number): string {
  if (name.length > maxLength) throw new UnsafeNameError(`name longer than ${maxLength} characters`);
  if (name.includes('\0')) throw new UnsafeNameError('name contains a NUL byte');
  // A backslash is a separator on Windows consumers and a classic way to smuggle `..\..`.
  if (name.includes('\\')) throw new UnsafeNameError('name contains a backslash');
  if (name.startsWith('/')) throw new UnsafeNameError('absolute name');
  const segments: string[] = [];
  for (const seg of name.split('/')) {
    if (seg === '' || seg === '.') continue; // `./x` (umoci), `a//b`, trailing `/` of directories
    if (seg === '..') throw new UnsafeNameError("name has a '..' segment");
    segments.push(seg);
  }
  return segments.join('/');
}

/**
 * Names a consumer cannot use are refused, not dropped: a control character (newline, ESC …) breaks
 * every line-based consumer and log, and the publisher would skip the file silently; top-level names
 * starting with `..` belong to the volume's own scheme (`..data`, `..zeta-provision.json`, generation
 * directories), as in kubelet's ConfigMap volumes.
 */
export function checkPublishableName(rel: string): void {
  if (/[\x00-\x1f\x7f]/.test(rel)) throw new UnsafeNameError('name contains a control character');
  if (rel.startsWith('..')) throw new UnsafeNameError("top-level names starting with '..' are reserved for the volume's own files");
}

/**
 * Attacker-chosen names in messages and logs: control characters and backslashes escaped (`\n`,
 * `\x1b`, `\\`), so the name stays on one line and reads back unambiguously; long names shortened.
 */
export function printableName(s: string): string {
  const clean = s.replace(/[\x00-\x1f\x7f\\]/g, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\r') return '\\r';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}

/** The parent of a tree-relative path (`''` for top-level names). */
export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i === -1 ? '' : rel.slice(0, i);
}

export function baseName(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/** `a/b/c` → `['a', 'a/b']`: the directories that must exist (and must not be symlinks). */
export function ancestorsOf(rel: string): string[] {
  const out: string[] = [];
  let i = rel.indexOf('/');
  while (i !== -1) {
    out.push(rel.slice(0, i));
    i = rel.indexOf('/', i + 1);
  }
  return out;
}

export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

export const OPAQUE_MARKER = '.wh..wh..opq';
const WHITEOUT_PREFIX = '.wh.';

export type Whiteout =
  | { kind: 'opaque'; dir: string }
  | { kind: 'whiteout'; target: string }
  /** `.wh..wh.plnk` etc.: aufs bookkeeping that is never part of the image content. */
  | { kind: 'meta' };

/** Classifies OCI whiteout names; `null` for ordinary entries. */
export function classifyWhiteout(rel: string): Whiteout | null {
  const base = baseName(rel);
  if (!base.startsWith(WHITEOUT_PREFIX)) return null;
  const dir = parentOf(rel);
  if (base === OPAQUE_MARKER) return { kind: 'opaque', dir };
  if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return { kind: 'meta' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  // `.wh.` alone or `.wh..` would delete the directory itself or its parent.
  if (name === '' || name === '.' || name === '..') throw new UnsafeNameError('malformed whiteout name');
  return { kind: 'whiteout', target: joinRel(dir, name) };
}

/**
 * Lexical check of a link target: where `target`, read from directory `baseDir`, lands when no
 * component is a symlink. `null` when it climbs above the root. The file-system aware resolver in
 * tree.ts follows symlinks as well; this is its first, cheap half.
 */
export function resolveLexically(baseDir: string, target: string): string | null {
  if (target.startsWith('/')) return null;
  const stack = baseDir === '' ? [] : baseDir.split('/');
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (stack.length === 0) return null;
      stack.pop();
    } else {
      stack.push(seg);
    }
  }
  return stack.join('/');
}

/** Checks a symlink target string before any file-system resolution. */
export function checkSymlinkTarget(target: string, maxLength: number): void {
  if (target.length === 0) throw new UnsafeNameError('empty symlink target');
  if (target.length > maxLength) throw new UnsafeNameError(`symlink target longer than ${maxLength} characters`);
  if (target.includes('\0')) throw new UnsafeNameError('symlink target contains a NUL byte');
  if (/[\x01-\x1f\x7f]/.test(target)) throw new UnsafeNameError('symlink target contains a control character');
  // Absolute targets resolve against whatever root the consumer has (the host, in the worst case).
  if (target.startsWith('/')) throw new UnsafeNameError(`absolute symlink target '${target}'`);
}

/** Byte-wise comparison so the `dir:` digest does not depend on locale or ICU collation. */
export function compareRel(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
