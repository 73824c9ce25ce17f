/**
 * Applies an image's layers bottom-up into the staging tree, whatever store the blobs come from, then
 * checks the finished tree once more (a symlink can only be judged when every layer has landed).
 */
import { chmodSync } from 'node:fs';
import { SourceError } from '../errors.js';
import type { UnpackState } from './apply-layer.js';
import type { BlobStore, Image } from './image.js';
import { joinRel } from './paths.js';
import { fileSize, isDir, isLink, MAX_LAYERS, PathTree, type DirNode } from './path-tree.js';
import { StagingSpace } from './staging-space.js';
import type { LayerProgress, UnpackLimits, UnpackResult } from './types.js';

export async function applyImage(store: BlobStore, image: Image, root: string, limits: UnpackLimits, progress?: LayerProgress): Promise<UnpackResult> {
  const count = image.layers.length;
  if (count > MAX_LAYERS) throw new SourceError(`image ${image.manifestDigest} has ${count} layers (at most ${MAX_LAYERS})`);
  // Loaded only when something is unpacked: the tar parser and its stream library are not needed by
  // the hourly up-to-date run, which stops before this.
  const { applyLayer } = await import('./apply-layer.js');
  const state: UnpackState = { root, limits, entries: 0, bytes: 0, tarBytes: 0, tree: new PathTree(), space: new StagingSpace(root), warnings: [] };
  for (const [i, layer] of image.layers.entries()) {
    const started = Date.now();
    const event = (bytes: number, done: boolean) =>
      progress?.({ index: i + 1, count, digest: layer.digest, size: layer.size, bytes, ms: Date.now() - started, done });
    const input = { descriptor: layer, open: () => store.openBlob(layer), onBytes: (n: number) => event(n, false) };
    const diffId = image.diffIds?.[i];
    await applyLayer(state, diffId === undefined ? input : { ...input, diffId }, i);
    event(layer.size, true);
  }
  const tree = finishTree(state);
  if (tree.escapingLink !== undefined) {
    throw new SourceError(`image ${image.manifestDigest}: symlink '${tree.escapingLink}' leads outside the image`);
  }
  return { root, files: tree.files, bytes: tree.bytes, warnings: state.warnings, annotations: image.annotations };
}

/**
 * One pass over the finished tree (in memory: no readdir, no lstat): re-checks every symlink against
 * the final state, counts regular files, and applies the recorded directory modes children first
 * (they were kept owner-writable while layers were applied, so a read-only directory in a lower layer
 * cannot block a later whiteout).
 */
function finishTree(state: UnpackState): { files: number; bytes: number; escapingLink?: string } {
  let files = 0;
  let bytes = 0;
  const modes: [string, number][] = [];
  // Iterative, depth-first: a 2,000-level tree must not depend on the call stack.
  const stack: [DirNode, string][] = [[state.tree.top, '']];
  while (stack.length > 0) {
    const [dir, rel] = stack.pop()!;
    for (const [name, node] of dir.children) {
      if (typeof node === 'number') {
        files++;
        bytes += fileSize(node);
      } else if (isLink(node)) {
        if (!state.tree.staysInside(rel, node.target)) return { files, bytes, escapingLink: joinRel(rel, name) };
      } else if (isDir(node)) {
        const childRel = joinRel(rel, name);
        if (node.mode >= 0) modes.push([childRel, node.mode]);
        stack.push([node, childRel]);
      }
    }
  }
  // Deepest first: a parent made read-only before its children would refuse their chmod.
  for (let i = modes.length - 1; i >= 0; i--) chmodSync(`${state.root}/${modes[i]![0]}`, modes[i]![1]);
  return { files, bytes };
}
