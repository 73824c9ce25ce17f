/**
 * Applies an image's layers bottom-up into the staging tree, whatever store the blobs come from, then
 * checks the finished tree once more (a symlink can only be judged when every layer has landed).
 */
import { SourceError } from '../errors.js';
import { applyLayer, type UnpackState } from './apply-layer.js';
import type { BlobStore, Image } from './image.js';
import { finishTree } from './tree.js';
import type { UnpackLimits, UnpackResult } from './types.js';

export async function applyImage(store: BlobStore, image: Image, root: string, limits: UnpackLimits): Promise<UnpackResult> {
  const state: UnpackState = { root, limits, entries: 0, bytes: 0, tarBytes: 0, dirModes: new Map(), warnings: [] };
  for (const [i, layer] of image.layers.entries()) {
    const input = { descriptor: layer, open: () => store.openBlob(layer) };
    const diffId = image.diffIds?.[i];
    await applyLayer(state, diffId === undefined ? input : { ...input, diffId });
  }
  const tree = await finishTree(root, state.dirModes);
  if (tree.escapingLink !== undefined) {
    throw new SourceError(`image ${image.manifestDigest}: symlink '${tree.escapingLink}' leads outside the image`);
  }
  return { root, files: tree.files, bytes: tree.bytes, warnings: state.warnings, annotations: image.annotations };
}
