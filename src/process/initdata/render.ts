/**
 * Canonical initdata TOML, and its gzip + base64 form.
 *
 * The attestation measures the exact bytes of the TOML document (kata-types `calculate_initdata_digest`
 * and cloud-api-adaptor hash the decompressed string as it is, not the trustee spec's JSON
 * canonicalisation), so the rendering is fixed here: identical parts give identical bytes, and a run
 * with unchanged inputs changes no reference value and rolls nothing out.
 *
 *   algorithm = "sha256"
 *   version = "0.1.0"
 *
 *   [data]
 *   "aa.toml" = '''
 *   …'''
 *
 * Keys sorted by UTF-16 code unit and always quoted; values as multi-line literal strings (the
 * newline after the opening quotes is dropped by TOML, so the value is exactly the part), or as a
 * basic string with escapes when the part cannot be a literal string.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { parse as parseToml } from 'smol-toml';
import { InternalError, VerifyError, errorMessage } from '../../errors.js';
import type { InitdataAlgorithm } from '../../config/initdata.js';

/** The only version kata-types and the trustee spec define. */
export const INITDATA_VERSION = '0.1.0';
/** One part: the agent policy from genpolicy is the largest, typically tens of KiB. */
export const MAX_PART_BYTES = 256 * 1024;
/**
 * Encoded form: pod annotations share a 256 KiB budget per object (metadata.annotations), and
 * the same value is written under up to two keys; a ConfigMap value could take more, but one
 * bound keeps both targets equal.
 */
export const MAX_ENCODED_BYTES = 96 * 1024;
/** What a decoder accepts before it stops: a gzip bomb in a live annotation is refused, not inflated. */
export const MAX_DECODED_BYTES = 4 * 1024 * 1024;

export interface InitdataDocument {
  algorithm: InitdataAlgorithm;
  version: string;
  data: Record<string, string>;
}

export function renderInitdata(algorithm: InitdataAlgorithm, data: Record<string, string>): Buffer {
  const keys = Object.keys(data).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const lines = [`algorithm = ${basicString(algorithm)}`, `version = ${basicString(INITDATA_VERSION)}`, '', '[data]'];
  keys.forEach((k, i) => {
    if (i > 0) lines.push('');
    lines.push(`${basicString(k)} = ${stringValue(data[k]!)}`);
  });
  const text = lines.join('\n') + '\n';
  // The round trip is the proof that what the guest parses is what we meant: a quoting mistake
  // here would otherwise be measured, published and attested.
  const back = parseInitdata(Buffer.from(text, 'utf8'), 'rendered initdata');
  if (back.algorithm !== algorithm || back.version !== INITDATA_VERSION || !sameData(back.data, data)) {
    throw new InternalError('the rendered initdata does not parse back to its parts');
  }
  return Buffer.from(text, 'utf8');
}

/** Parses an initdata document with a real TOML parser and checks its shape (kata-types `InitData`). */
export function parseInitdata(bytes: Buffer, what: string): InitdataDocument {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Record<string, unknown>;
  } catch (err) {
    throw new VerifyError(`${what} is not valid TOML: ${firstLine(errorMessage(err))}`);
  }
  const extra = Object.keys(doc).filter((k) => !['algorithm', 'version', 'data'].includes(k));
  if (extra.length > 0) throw new VerifyError(`${what} has unexpected top-level keys: ${extra.join(', ')}`);
  if (doc.version !== INITDATA_VERSION) throw new VerifyError(`${what}: version ${JSON.stringify(doc.version)} is not ${INITDATA_VERSION}`);
  if (doc.algorithm !== 'sha256' && doc.algorithm !== 'sha384' && doc.algorithm !== 'sha512')
    throw new VerifyError(`${what}: algorithm ${JSON.stringify(doc.algorithm)} is not sha256, sha384 or sha512`);
  const data = doc.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new VerifyError(`${what}: [data] is missing`);
  for (const [k, v] of Object.entries(data)) if (typeof v !== 'string') throw new VerifyError(`${what}: data.${k} is not a string`);
  return { algorithm: doc.algorithm, version: doc.version, data: data as Record<string, string> };
}

/** gzip + base64, what `gzip | base64 -w0` gives (zlib's header: no name, mtime 0). */
export function encodeInitdata(toml: Buffer): string {
  const encoded = gzipSync(toml, { level: 9 }).toString('base64');
  if (encoded.length > MAX_ENCODED_BYTES) {
    throw new VerifyError(
      `the encoded initdata is ${encoded.length} bytes, over the ${MAX_ENCODED_BYTES}-byte limit for an annotation or ConfigMap value`,
      undefined,
      'shorten the parts (the agent policy is usually the largest)',
    );
  }
  return encoded;
}

/**
 * The TOML inside a live value, or undefined when it is not gzip + base64 of something small.
 * Live values are compared decoded: a different zlib (Node upgrade) may compress the same bytes
 * differently, and that must not count as a change.
 */
export function decodeInitdata(value: string): Buffer | undefined {
  if (value.length > MAX_ENCODED_BYTES * 2 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value.replace(/\s+/g, ''))) return undefined;
  try {
    return gunzipSync(Buffer.from(value, 'base64'), { maxOutputLength: MAX_DECODED_BYTES });
  } catch {
    return undefined;
  }
}

function stringValue(v: string): string {
  // A literal string cannot hold ''' nor control characters other than tab, and a trailing quote
  // would merge with the closing delimiter. CR goes escaped too: parsers may normalise CRLF.
  const literalOk = !v.includes("'''") && !v.endsWith("'") && !/[\x00-\x08\x0b-\x1f\x7f]/.test(v);
  return literalOk ? `'''\n${v}'''` : basicString(v);
}

function basicString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

function sameData(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 300);
}
