/**
 * Streaming extraction: files are yielded one at a time in folder order as their blocks are decoded.
 * Memory beyond the cabinet itself is one block, its predecessor (the MSZIP dictionary) and a file
 * that spans blocks while it is assembled, however many files the cabinet has.
 */
import { cabError } from './header.js';
import { readCabDirectory, type CabDirectory, type CabFile } from './directory.js';
import { decodeFolder } from './folder.js';

export interface CabEntry {
  file: CabFile;
  /** The member's bytes. May be a view of a decoded block (or of the cabinet, for stored folders). */
  data: Buffer;
}

export interface CabReadOptions {
  /** Name of the cabinet in error messages. */
  name?: string;
  /** Largest member accepted (default 64 MiB): a hostile size field must not size an allocation. */
  maxFileSize?: number;
}

const DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024;

/** Files of one folder sorted by offset, checked not to overlap (each byte belongs to one file). */
function folderFiles(dir: CabDirectory, folder: number, name: string, maxFileSize: number): CabFile[] {
  const files = dir.files.filter((f) => f.folder === folder).sort((a, b) => a.offset - b.offset);
  let next = 0;
  for (const f of files) {
    if (f.size > maxFileSize) throw cabError(name, `${f.name}: ${f.size} bytes exceeds the limit of ${maxFileSize}`);
    if (f.offset < next) throw cabError(name, `${f.name}: overlaps the file before it in folder ${folder}`);
    next = f.offset + f.size;
  }
  return files;
}

/**
 * Yield every member of the cabinet in `cab` with its content. Throws a VerifyError naming the cabinet
 * for anything malformed: a hostile name, a bad checksum, a truncated block, unsupported compression,
 * a file that extends past its folder's data.
 */
export function* readCabinet(cab: Buffer, options: CabReadOptions = {}): Generator<CabEntry> {
  const name = options.name ?? 'cabinet';
  const maxFileSize = options.maxFileSize ?? DEFAULT_MAX_FILE_SIZE;
  const dir = readCabDirectory(cab, name);
  for (const folder of dir.folders) {
    const files = folderFiles(dir, folder.index, name, maxFileSize);
    let index = 0;
    let current: { file: CabFile; data: Buffer; filled: number } | undefined;
    let folderSize = 0;
    for (const block of decodeFolder(cab, folder, dir.header.cbCabinet, dir.dataReserve, name)) {
      folderSize = block.start + block.data.byteLength;
      for (;;) {
        if (!current) {
          const next = files[index];
          // Files are sorted by offset; the next one starts in a later block (gaps are skipped).
          if (!next || next.offset > folderSize || (next.offset === folderSize && next.size > 0)) break;
          index++;
          if (next.size === 0) {
            yield { file: next, data: Buffer.alloc(0) };
            continue;
          }
          // A file inside one block is handed out as a view of it: no copy, and nothing is allocated
          // for the thousands of small files of a TrustedTpm.cab.
          if (next.offset + next.size <= folderSize) {
            yield { file: next, data: block.data.subarray(next.offset - block.start, next.offset - block.start + next.size) };
            continue;
          }
          current = { file: next, data: Buffer.alloc(next.size), filled: 0 };
        }
        // Absolute position of the next byte the current file needs; never before this block, because
        // a file is started in the block its first byte is in.
        const from = current.file.offset + current.filled - block.start;
        if (from >= block.data.byteLength) break;
        const take = Math.min(current.file.size - current.filled, block.data.byteLength - from);
        block.data.copy(current.data, current.filled, from, from + take);
        current.filled += take;
        if (current.filled < current.file.size) break;
        const done = current;
        current = undefined;
        yield { file: done.file, data: done.data };
      }
    }
    // Empty files at the very end (or in a folder without any block) need no data.
    while (!current && files[index]?.size === 0 && files[index]!.offset <= folderSize) yield { file: files[index++]!, data: Buffer.alloc(0) };
    const missing = current?.file ?? files[index];
    if (missing)
      throw cabError(name, `${missing.name}: extends past the end of folder ${folder.index}'s data (${folderSize} bytes): the cabinet is truncated or corrupt`);
  }
}
