/**
 * Cabinet member names → clean POSIX paths. Names come from whoever built the cabinet: they are refused
 * (never "fixed") when they could address anything outside the extraction root, exactly like tar names
 * in src/source/paths.ts. Cabinets use `\` as the separator; `/` is accepted as one too (some tools
 * write it), so `a\..\..\x` and `a/../../x` are both caught.
 */
import { normalizeEntryName, UnsafeNameError } from '../source/paths.js';

/** szName is at most 255 bytes plus NUL (MS-CAB 2.4 CFFILE). */
export const MAX_CAB_NAME_BYTES = 256;

/** The CFFILE attribute bit that says szName is UTF-8; without it the name is in a legacy code page. */
export const ATTRIB_NAME_IS_UTF = 0x80;

/**
 * Decode szName. With the UTF-8 flag the bytes must be valid UTF-8 (a lossy decode would let two
 * different byte strings name the same file). Without it, bytes ≥ 0x80 are read as ISO-8859-1, as
 * cabextract does; plain ASCII is the same either way.
 */
export function decodeCabName(raw: Uint8Array, attribs: number): string {
  if (attribs & ATTRIB_NAME_IS_UTF) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new UnsafeNameError('name flagged UTF-8 is not valid UTF-8');
    }
  }
  return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
}

/** `dir\sub\file.cer` → `dir/sub/file.cer`; throws UnsafeNameError for hostile names. */
export function normalizeCabName(name: string): string {
  if (name.length === 0) throw new UnsafeNameError('empty name');
  if (name.includes('\0')) throw new UnsafeNameError('name contains a NUL byte');
  // Control characters have no place in a file name and make log lines lie.
  if (/[\u0001-\u001f\u007f]/.test(name)) throw new UnsafeNameError('name contains a control character');
  const unified = name.replace(/\\/g, '/');
  // `C:x`, `C:\x`: a drive-relative or absolute path on the Windows side.
  if (/^[A-Za-z]:/.test(unified)) throw new UnsafeNameError('name with a drive letter');
  // From here on the same rules as a tar entry name: not absolute, no `..` segment.
  const rel = normalizeEntryName(unified, MAX_CAB_NAME_BYTES);
  if (rel === '') throw new UnsafeNameError('name has no file part');
  return rel;
}
