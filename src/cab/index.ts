/**
 * Cabinet reader: header parsing and the Authenticode digest layout (shared by verify and process), the
 * directory, and streaming extraction of stored and MSZIP folders.
 */
export * from './header.js';
export { readCabDirectory, compressionName, type CabDirectory, type CabFile, type CabFolder } from './directory.js';
export { readCabinet, type CabEntry, type CabReadOptions } from './reader.js';
export { cabChecksum, cfdataChecksum } from './checksum.js';
export { normalizeCabName } from './names.js';
