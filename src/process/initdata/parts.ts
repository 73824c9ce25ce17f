/**
 * The initdata parts: payload files as they are, or templates with payload files substituted
 * (`{{file:kbs/tls.crt}}` → that file's text, one trailing newline dropped, so a PEM fits between
 * `"""` lines). Every part is checked for its kind before it is rendered: a `.toml` part must be
 * TOML, a `.rego` part must look like an agent policy. Substituted text may not carry quotes of
 * three, backslashes or control characters: inside a TOML string in a template those would end the
 * string and let the substituted file add keys of its own.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { InitdataPart } from '../../config/initdata.js';
import { VerifyError, errorMessage } from '../../errors.js';
import type { TreeEntry } from '../../util/fs.js';
import { MAX_PART_BYTES } from './render.js';

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const MAX_SUBSTITUTIONS = 32;

export interface ResolvedPart {
  key: string;
  text: string;
  /** Payload files it was made from (template first). */
  sources: string[];
}

export async function resolveParts(stagingRoot: string, tree: TreeEntry[], parts: InitdataPart[]): Promise<ResolvedPart[]> {
  const regular = new Map(tree.filter((e) => e.type === 'file').map((e) => [e.path, e]));
  const read = async (rel: string, what: string): Promise<string> => {
    const entry = regular.get(rel);
    if (!entry) {
      const other = tree.find((e) => e.path === rel);
      throw new VerifyError(
        `${what}: the payload has ${other ? `a ${other.type}, not a regular file,` : 'no file'} ${rel}`,
        rel,
        'check initdata.parts in the config against the payload',
      );
    }
    if (entry.size > MAX_PART_BYTES)
      throw new VerifyError(`${what}: ${rel} is ${entry.size} bytes, over the ${MAX_PART_BYTES}-byte limit of an initdata part`, rel);
    const bytes = await readFile(path.join(stagingRoot, rel));
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new VerifyError(`${what}: ${rel} is not UTF-8 text`, rel);
    }
  };
  const out: ResolvedPart[] = [];
  for (const part of parts) {
    const what = `initdata part ${part.key}`;
    let text: string;
    const sources: string[] = [];
    if ('file' in part) {
      text = await read(part.file, what);
      sources.push(part.file);
    } else {
      const template = await read(part.template, what);
      sources.push(part.template);
      const wanted = [...template.matchAll(PLACEHOLDER)];
      if (wanted.length > MAX_SUBSTITUTIONS)
        throw new VerifyError(`${what}: ${part.template} has ${wanted.length} placeholders, more than ${MAX_SUBSTITUTIONS}`, part.template);
      const values = new Map<string, string>();
      for (const m of wanted) {
        const ref = /^file:(.+)$/.exec(m[1]!);
        if (!ref) throw new VerifyError(`${what}: ${part.template} has an unknown placeholder {{${m[1]}}} (only {{file:PAYLOAD/PATH}})`, part.template);
        const rel = ref[1]!.trim();
        if (values.has(rel)) continue;
        const value = (await read(rel, `${what} (${part.template})`)).replace(/\r?\n$/, '');
        const bad = substitutionProblem(value);
        if (bad) throw new VerifyError(`${what}: ${rel} cannot be substituted into ${part.template}: it ${bad}`, rel);
        values.set(rel, value);
        sources.push(rel);
      }
      text = template.replace(PLACEHOLDER, (_all, inner: string) => values.get(inner.replace(/^file:/, '').trim())!);
      if (Buffer.byteLength(text) > MAX_PART_BYTES)
        throw new VerifyError(`${what}: ${part.template} with its substitutions is over ${MAX_PART_BYTES} bytes`, part.template);
    }
    checkPart(part.key, text, sources[0]!);
    out.push({ key: part.key, text, sources });
  }
  return out;
}

/** Why a file cannot go into a template, or undefined. */
export function substitutionProblem(value: string): string | undefined {
  if (value.includes("'''") || value.includes('"""')) return 'contains three quotes in a row';
  if (value.includes('\\')) return 'contains a backslash';
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(value)) return 'contains control characters';
  return undefined;
}

/** A part must be what its name says it is, or the guest component reading it fails after attestation. */
export function checkPart(key: string, text: string, source: string): void {
  if (text.includes('\0')) throw new VerifyError(`initdata part ${key} (${source}) contains a NUL byte`, source);
  if (key.endsWith('.toml')) {
    try {
      parseToml(text);
    } catch (err) {
      throw new VerifyError(`initdata part ${key} (${source}) is not valid TOML: ${errorMessage(err).split('\n')[0]}`, source);
    }
  } else if (key.endsWith('.rego')) {
    // Not a Rego parser: the shape the Kata agent needs — a package clause first (comments and
    // blank lines aside), balanced braces, and at least one rule after it.
    const lines = text
      .split('\n')
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter((l) => l !== '');
    const pkg = /^package\s+([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)$/.exec(lines[0] ?? '');
    if (!pkg) throw new VerifyError(`initdata part ${key} (${source}) does not start with a Rego package clause`, source);
    if (key === 'policy.rego' && pkg[1] !== 'agent_policy')
      throw new VerifyError(`initdata part policy.rego (${source}) is package ${pkg[1]}; the Kata agent reads package agent_policy`, source);
    if (lines.length < 2) throw new VerifyError(`initdata part ${key} (${source}) has no rules after its package clause`, source);
    let depth = 0;
    for (const ch of stripStrings(text)) {
      if (ch === '{') depth++;
      else if (ch === '}' && --depth < 0) break;
    }
    if (depth !== 0) throw new VerifyError(`initdata part ${key} (${source}) has unbalanced braces`, source);
  }
}

/** Rego text without string literals and comments, for the brace count. */
function stripStrings(text: string): string {
  return text.replace(/`[^`]*`|"(?:[^"\\\n]|\\.)*"|#[^\n]*/g, '');
}
