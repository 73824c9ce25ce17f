/**
 * Which payload file a processor reads. gematik ships the same data in a flat layout (`roots.json`)
 * and in subdirectories (`ti-roots/roots.json`); a processor lists candidates in order of preference.
 * The first candidate that matches wins; a candidate glob matching several files is ambiguous and
 * refused, because "whichever sorts first" would make trust depend on file naming.
 */
import picomatch from 'picomatch';
import { VerifyError } from '../errors.js';
import type { TreeEntry } from '../util/fs.js';

export interface PickedInput {
  path: string;
  /** Later candidates that also matched and were not used. */
  ignored: string[];
}

export function pickInput(tree: TreeEntry[], candidates: string[], kind: 'file' | 'dir', what: string): PickedInput {
  let picked: string | undefined;
  const ignored: string[] = [];
  for (const candidate of candidates) {
    const isMatch = picomatch(candidate, { dot: true });
    const matches = tree.filter((e) => isMatch(e.path));
    const usable = matches.filter((e) => e.type === kind).map((e) => e.path);
    for (const m of matches) {
      // A link in place of trust data is refused, not followed: its target is outside what was verified.
      if (m.type === 'symlink' || m.type === 'other')
        throw new VerifyError(`${m.path}: ${what} input is a ${m.type === 'symlink' ? 'symbolic link' : 'special file'}; refused`, m.path);
    }
    if (usable.length > 1)
      throw new VerifyError(
        `${what}: ${JSON.stringify(candidate)} matches ${usable.length} payload entries (${usable.slice(0, 5).join(', ')}); name one`,
        usable[0],
      );
    if (usable.length === 0) continue;
    if (picked === undefined) picked = usable[0]!;
    else ignored.push(usable[0]!);
  }
  if (picked === undefined)
    throw new VerifyError(
      `${what}: the payload has none of ${candidates.join(', ')}`,
      candidates[0],
      "check the payload layout, or the processor's files in the config",
    );
  return { path: picked, ignored };
}
