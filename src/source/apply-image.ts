/**
 * Applies an image's layers bottom-up into the staging tree, whatever store the blobs come from, then
 * checks the finished tree once more (a symlink can only be judged when every layer has landed).
 */
import { SourceError } from '../errors.js';
import { applyLayer, type UnpackState } from './apply-layer.js';
import type { BlobStore, Image } from './image.js';
import { finishTree } from './tree.js';
import type { LayerProgress, UnpackLimits, UnpackResult } from './types.js';

export async function applyImage(store: BlobStore, image: Image, root: string, limits: UnpackLimits, progress?: LayerProgress): Promise<UnpackResult> {
  const state: UnpackState = { root, limits, entries: 0, bytes: 0, tarBytes: 0, dirModes: new Map(), knownDirs: new Set(), warnings: [] };
  const count = image.layers.length;
  for (const [i, layer] of image.layers.entries()) {
    const started = Date.now();
    const event = (bytes: number, done: boolean) =>
      progress?.({ index: i + 1, count, digest: layer.digest, size: layer.size, bytes, ms: Date.now() - started, done });
    const input = { descriptor: layer, open: () => store.openBlob(layer), onBytes: (n: number) => event(n, false) };
    const diffId = image.diffIds?.[i];
    await applyLayer(state, diffId === undefined ? input : { ...input, diffId });
    event(layer.size, true);
  }
  const tree = await finishTree(root, state.dirModes);
  if (tree.escapingLink !== undefined) {
    throw new SourceError(`image ${image.manifestDigest}: symlink '${tree.escapingLink}' leads outside the image`);
  }
  return { root, files: tree.files, bytes: tree.bytes, warnings: state.warnings, annotations: image.annotations };
}
