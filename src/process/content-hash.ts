/**
 * The content hash of a ConfigMap/Secret: key, length and bytes of every entry, in key order. One
 * function for the desired object (process stage) and the live one read back from the API (kube
 * target): were the two to frame the bytes differently, every run would see drift, or none.
 */
import { createHash } from 'node:crypto';

export function contentHash(entries: readonly { key: string; bytes: Buffer }[]): string {
  const hash = createHash('sha256');
  for (const e of [...entries].sort((a, b) => (a.key < b.key ? -1 : 1)))
    hash.update(e.key).update('\0').update(String(e.bytes.length)).update('\0').update(e.bytes);
  return `sha256:${hash.digest('hex')}`;
}
