/**
 * The cabinet's directory: CFHEADER, the CFFOLDER records and the CFFILE table (MS-CAB 2.2–2.4).
 * Nothing is decompressed here. Every count, offset and size is read from the file and checked against
 * the cabinet's extent (cbCabinet) before use, so a hostile header ends in a VerifyError naming the
 * file, never in a RangeError from a Buffer read.
 */
import { ancestorsOf, UnsafeNameError } from '../source/paths.js';
import { CAB_FIXED_HEADER, FLAG_NEXT_CABINET, FLAG_PREV_CABINET, FLAG_RESERVE_PRESENT, cabError, parseCabHeader, type CabHeader } from './header.js';
import { MAX_CAB_NAME_BYTES, decodeCabName, normalizeCabName } from './names.js';

export const COMPRESSION_NONE = 0;
export const COMPRESSION_MSZIP = 1;
export const COMPRESSION_QUANTUM = 2;
export const COMPRESSION_LZX = 3;
const COMPRESSION_NAMES = ['none', 'MSZIP', 'Quantum', 'LZX'];

/** iFolder values ≥ this mean "continued from/to another cabinet of a set". */
const IFOLDER_CONTINUED = 0xfffd;
const CFFOLDER_SIZE = 8;
const CFFILE_SIZE = 16;

export interface CabFolder {
  index: number;
  /** Offset of the first CFDATA block. */
  dataOffset: number;
  blockCount: number;
  /** typeCompress & 0x0f (0 none, 1 MSZIP, 2 Quantum, 3 LZX). */
  compression: number;
}

export interface CabFile {
  /** Clean POSIX path (`\` → `/`), checked like a tar name. */
  name: string;
  /** szName as decoded, before normalisation. */
  rawName: string;
  size: number;
  folder: number;
  /** Offset of the first byte in the folder's uncompressed stream. */
  offset: number;
  attribs: number;
  /** MS-DOS date and time fields as stored. */
  date: number;
  time: number;
}

export interface CabDirectory {
  header: CabHeader;
  folders: CabFolder[];
  /** In table order. */
  files: CabFile[];
  /** Bytes of reserve before each CFDATA payload. */
  dataReserve: number;
}

export function compressionName(type: number): string {
  return COMPRESSION_NAMES[type] ?? `unknown (${type})`;
}

/** Parse and check the directory of the cabinet held in `cab`. `file` names it in errors. */
export function readCabDirectory(cab: Uint8Array, file: string): CabDirectory {
  const b = Buffer.from(cab.buffer, cab.byteOffset, cab.byteLength);
  const header = parseCabHeader(b, b.byteLength, file);
  // Spanned cabinet sets would need the other cabinets; nothing we process uses them.
  if (header.flags & (FLAG_PREV_CABINET | FLAG_NEXT_CABINET)) throw cabError(file, 'cabinet is part of a multi-cabinet set, which is not supported');
  const end = header.cbCabinet;
  let pos = CAB_FIXED_HEADER;
  let folderReserve = 0;
  let dataReserve = 0;
  if (header.flags & FLAG_RESERVE_PRESENT) {
    pos = 40 + (header.cbCFHeader ?? 0);
    folderReserve = header.cbCFFolder ?? 0;
    dataReserve = header.cbCFData ?? 0;
  }
  const need = (at: number, length: number, what: string): void => {
    if (at + length > end) throw cabError(file, `${what} at offset ${at} runs past the end of the cabinet (${end} bytes)`);
  };

  const folders: CabFolder[] = [];
  for (let i = 0; i < header.cFolders; i++) {
    need(pos, CFFOLDER_SIZE + folderReserve, `folder ${i}`);
    const folder: CabFolder = { index: i, dataOffset: b.readUInt32LE(pos), blockCount: b.readUInt16LE(pos + 4), compression: b.readUInt16LE(pos + 6) & 0x0f };
    if (folder.dataOffset < pos || folder.dataOffset > end) throw cabError(file, `folder ${i}: data offset ${folder.dataOffset} is outside the cabinet`);
    folders.push(folder);
    pos += CFFOLDER_SIZE + folderReserve;
  }
  if (pos > header.coffFiles) throw cabError(file, `folder records end at ${pos}, after the file table at ${header.coffFiles}`);

  const files: CabFile[] = [];
  const names = new Set<string>();
  pos = header.coffFiles;
  for (let i = 0; i < header.cFiles; i++) {
    need(pos, CFFILE_SIZE + 1, `file record ${i}`);
    const nameEnd = b.indexOf(0, pos + CFFILE_SIZE);
    if (nameEnd < 0 || nameEnd >= end || nameEnd - (pos + CFFILE_SIZE) >= MAX_CAB_NAME_BYTES)
      throw cabError(file, `file record ${i}: name is unterminated or longer than ${MAX_CAB_NAME_BYTES - 1} bytes`);
    const attribs = b.readUInt16LE(pos + 14);
    const folder = b.readUInt16LE(pos + 8);
    let rawName = '';
    let name: string;
    try {
      rawName = decodeCabName(b.subarray(pos + CFFILE_SIZE, nameEnd), attribs);
      name = normalizeCabName(rawName);
    } catch (err) {
      if (!(err instanceof UnsafeNameError)) throw err;
      throw cabError(file, `file record ${i} ${JSON.stringify(rawName)}: refused: ${err.message}`);
    }
    if (folder >= IFOLDER_CONTINUED) throw cabError(file, `${name}: continues in another cabinet of a set, which is not supported`);
    if (folder >= folders.length) throw cabError(file, `${name}: folder ${folder} does not exist (${folders.length} folders)`);
    // Two records for one path: whichever an extractor writes last wins, so what was reviewed and what
    // lands on disk could differ.
    if (names.has(name)) throw cabError(file, `${name}: appears twice`);
    names.add(name);
    files.push({
      name,
      rawName,
      size: b.readUInt32LE(pos),
      offset: b.readUInt32LE(pos + 4),
      folder,
      attribs,
      date: b.readUInt16LE(pos + 10),
      time: b.readUInt16LE(pos + 12),
    });
    pos = nameEnd + 1;
  }
  // A name that is also another name's directory cannot be extracted faithfully.
  for (const f of files) {
    for (const dir of ancestorsOf(f.name)) {
      if (names.has(dir)) throw cabError(file, `${f.name}: its directory ${dir} is also a file`);
    }
  }
  return { header, folders, files, dataReserve };
}
