/**
 * What the unpack has made of the staging tree, mirrored in memory as a tree of name segments. The
 * staging directory is fresh, 0700 and ours alone, and every create and remove of the layer applier goes
 * through this mirror, so it answers "is this parent a real directory? is that name a symlink? did this
 * layer write it?" without a system call, in time proportional to the length of one name — never to its
 * depth times its length (walking and re-hashing every ancestor path made 2,000 nested directories cost
 * minutes).
 *
 * Memory is compact on purpose (200,000 entries must fit in the CronJob's memory limit): one Map per
 * directory, one plain number per regular file (size and layer packed into it), one small object per
 * symlink (its target, so link resolution needs no readlink).
 */
import { UnsafeNameError } from './paths.js';
import { MAX_LINK_HOPS } from './tree.js';

export interface DirNode {
  children: Map<string, TreeNode>;
  /** Last layer that created or passed through it (an opaque whiteout keeps what its own layer touched). */
  layer: number;
  /** Permission bits the image asked for, applied when the unpack is done; -1 for implied parents. */
  mode: number;
}
export interface LinkNode {
  target: string;
  layer: number;
}
/** A regular file: `size * LAYER_SPAN + layer`, an exact integer below 2^53 for sizes under 2^33. */
export type FileCode = number;
export type TreeNode = DirNode | LinkNode | FileCode;

const LAYER_SPAN = 2 ** 20;
/** More layers than this cannot be told apart in a FileCode (a manifest capped at 4 MiB lists far fewer). */
export const MAX_LAYERS = LAYER_SPAN - 1;

export const isDir = (n: TreeNode | undefined): n is DirNode => typeof n === 'object' && 'children' in n;
export const isLink = (n: TreeNode | undefined): n is LinkNode => typeof n === 'object' && 'target' in n;
export const layerOf = (n: TreeNode): number => (typeof n === 'number' ? n % LAYER_SPAN : n.layer);
export const fileCode = (size: number, layer: number): FileCode => size * LAYER_SPAN + layer;
export const fileSize = (code: FileCode): number => Math.floor(code / LAYER_SPAN);

/**
 * A segment cut out of a long name would keep the whole name alive (V8 slices share their parent); a
 * hostile layer of deep names must not make each short key cost the full name.
 */
function ownCopy(segment: string, whole: string): string {
  return segment.length >= 13 && whole.length > 2 * segment.length ? Buffer.from(segment, 'utf8').toString('utf8') : segment;
}

export class PathTree {
  readonly top: DirNode = { children: new Map(), layer: -1, mode: -1 };
  /** The last directory looked up: consecutive entries of one directory skip the walk. */
  private last: { rel: string; layer: number; dir: DirNode } | undefined;

  /**
   * The directory `dirRel` ('' is the root), every directory on the way marked as touched by `layer`.
   * A missing one is made by `create(prefix)` (which must create it on disk) or, without `create`,
   * ends the walk with `undefined`. A symlink or file on the way is refused: the kernel would follow
   * the link (`etc -> /`, then `etc/passwd`), and nothing can lie below a file.
   */
  dir(dirRel: string, layer: number, create?: (prefix: string) => void): DirNode | undefined {
    if (dirRel === '') return this.top;
    const last = this.last;
    if (last !== undefined && last.layer === layer && last.rel === dirRel) return last.dir;
    let node = this.top;
    let start = 0;
    for (;;) {
      const slash = dirRel.indexOf('/', start);
      const end = slash === -1 ? dirRel.length : slash;
      const seg = dirRel.slice(start, end);
      let child = node.children.get(seg);
      if (child === undefined) {
        if (create === undefined) return undefined;
        create(dirRel.slice(0, end));
        child = { children: new Map(), layer, mode: -1 };
        node.children.set(ownCopy(seg, dirRel), child);
      } else if (!isDir(child)) {
        throw new UnsafeNameError(`parent '${dirRel.slice(0, end)}' is ${isLink(child) ? 'a symlink' : 'not a directory'}`);
      }
      child.layer = layer;
      node = child;
      if (slash === -1) break;
      start = slash + 1;
    }
    if (create !== undefined) this.last = { rel: dirRel, layer, dir: node };
    return node;
  }

  /**
   * Looks `rel` up without creating or touching anything: `undefined` when a parent is missing or is
   * a file (nothing can be there); a symlinked parent is refused as in `dir`.
   */
  find(rel: string): { parent: DirNode; name: string; node: TreeNode | undefined } | undefined {
    const slash = rel.lastIndexOf('/');
    const name = rel.slice(slash + 1);
    let parent = this.top;
    for (let start = 0; start <= slash; ) {
      const next = rel.indexOf('/', start);
      const child = parent.children.get(rel.slice(start, next));
      if (isLink(child)) throw new UnsafeNameError(`parent '${rel.slice(0, next)}' is a symlink`);
      if (!isDir(child)) return undefined;
      parent = child;
      start = next + 1;
    }
    return { parent, name, node: parent.children.get(name) };
  }

  set(parent: DirNode, name: string, node: TreeNode, rel: string): void {
    parent.children.set(ownCopy(name, rel), node);
  }

  /** Forgets `name` (and everything below it); the caller removes it from disk. */
  delete(parent: DirNode, name: string): void {
    parent.children.delete(name);
    this.last = undefined;
  }

  /**
   * Whether `target`, read from directory `baseDir`, stays inside the tree when resolved the way the
   * kernel would, following the symlinks already in it. A purely lexical check is not enough: with
   * `sub/up -> ..` in place, `sub/up/..` is lexically `sub` but physically the parent of the root.
   * Components that do not exist yet are taken lexically; the sweep over the finished tree asks again.
   */
  staysInside(baseDir: string, target: string): boolean {
    if (target.startsWith('/')) return false;
    const stack: (DirNode | undefined)[] = [this.top];
    const pending: string[] = [];
    const push = (path: string): void => {
      const segs = path.split('/');
      for (let i = segs.length - 1; i >= 0; i--) pending.push(segs[i]!);
    };
    push(target);
    if (baseDir !== '') push(baseDir);
    let hops = 0;
    while (pending.length > 0) {
      const seg = pending.pop()!;
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        if (stack.length === 1) return false;
        stack.pop();
        continue;
      }
      const cur = stack[stack.length - 1];
      const child = cur === undefined ? undefined : cur.children.get(seg);
      if (isLink(child)) {
        if (++hops > MAX_LINK_HOPS || child.target.startsWith('/')) return false;
        push(child.target);
        continue;
      }
      stack.push(isDir(child) ? child : undefined);
    }
    return true;
  }
}
