/**
 * Edits of Trustee's RVPS reference values (`reference-values.json`: a JSON list of entries) that
 * touch only our entries.
 *
 * "Other entries kept byte for byte" is taken literally: the file is never re-serialised. A scanner
 * finds the source span of every top-level element; foreign elements keep their exact text
 * (key order, spacing, number spelling, `\u` escapes, even duplicate keys), and so does the text
 * between them. Only our elements' spans are replaced, removed (with the comma that separated
 * them) or appended before the closing bracket. A parse-and-stringify would have normalised the
 * operator's pcr03/pcr09/… entries, and a reviewer diffing the ConfigMap would see them "change".
 */
import { PublishError } from '../../errors.js';

/** The ConfigMap value is at most 1 MiB anyway; nesting and count bounds keep the scan linear and the stack small. */
const MAX_TEXT = 1024 * 1024;
const MAX_ENTRIES = 10_000;
const MAX_DEPTH = 32;

export interface RvpsElement {
  start: number;
  end: number;
  /** The element parsed (any JSON value). */
  value: unknown;
  /** `name` of an object element with a string name. */
  name?: string;
}

export interface RvpsList {
  text: string;
  /** Index of `[` and of `]`. */
  open: number;
  close: number;
  elements: RvpsElement[];
}

export function scanReferenceValues(text: string, what: string): RvpsList {
  if (text.length > MAX_TEXT) throw new PublishError(`${what} is ${text.length} bytes, more than a ConfigMap can hold`);
  // An absent or blank key is an empty list: the Trustee operator's sample starts that way.
  if (text.trim() === '') return { text: '[]', open: 0, close: 1, elements: [] };
  const fail = (at: number, why: string): never => {
    throw new PublishError(
      `${what} is not a JSON list of reference values: ${why} at offset ${at}`,
      'fix the ConfigMap by hand (nothing was written); zeta-provision edits only a well-formed list',
    );
  };
  let i = skipWs(text, 0);
  if (text[i] !== '[') fail(i, text[i] === '{' ? 'it is an object, not a list' : 'expected "["');
  const open = i;
  const elements: RvpsElement[] = [];
  i = skipWs(text, i + 1);
  if (text[i] === ']') {
    const close = i;
    if (skipWs(text, close + 1) !== text.length) fail(close + 1, 'text after the list');
    return { text, open, close, elements };
  }
  for (;;) {
    const start = i;
    const end = scanValue(text, i, fail);
    let value: unknown;
    try {
      value = JSON.parse(text.slice(start, end));
    } catch (err) {
      return fail(start, (err as Error).message.split('\n')[0]!);
    }
    const name =
      value !== null && typeof value === 'object' && !Array.isArray(value) && typeof (value as { name?: unknown }).name === 'string'
        ? (value as { name: string }).name
        : undefined;
    elements.push({ start, end, value, ...(name !== undefined ? { name } : {}) });
    if (elements.length > MAX_ENTRIES) fail(start, `more than ${MAX_ENTRIES} entries`);
    i = skipWs(text, end);
    if (text[i] === ',') {
      i = skipWs(text, i + 1);
      continue;
    }
    if (text[i] === ']') break;
    fail(i, 'expected "," or "]"');
  }
  const close = i;
  if (skipWs(text, close + 1) !== text.length) fail(close + 1, 'text after the list');
  return { text, open, close, elements };
}

/**
 * Applies our edits: `set` maps an entry name to its new JSON text (undefined: remove it). Every
 * element carrying one of those names is ours; the first keeps its place, further ones go.
 */
export function spliceReferenceValues(list: RvpsList, set: Map<string, string | undefined>): string {
  const { text, elements, open, close } = list;
  const head = text.slice(0, open + 1);
  const foot = text.slice(close);
  const placed = new Set<string>();
  const added = [...set].filter(([name, next]) => next !== undefined && !elements.some((e) => e.name === name)).map(([, next]) => next!);
  if (elements.length === 0) {
    return added.length === 0 ? text : head + '\n  ' + added.join(',\n  ') + '\n' + foot;
  }
  // gap(i): the text before element i (for i > 0 it holds the comma). A kept element keeps its own
  // gap; the first one written takes the list's opening gap instead, which has no comma.
  const gap = (i: number): string => text.slice(i === 0 ? open + 1 : elements[i - 1]!.end, elements[i]!.start);
  let out = head;
  let emitted = 0;
  elements.forEach((el, i) => {
    let piece = text.slice(el.start, el.end);
    if (el.name !== undefined && set.has(el.name)) {
      const next = set.get(el.name);
      if (next === undefined || placed.has(el.name)) return;
      placed.add(el.name);
      piece = next;
    }
    out += (emitted === 0 ? gap(0) : gap(i)) + piece;
    emitted++;
  });
  const sep = elements.length > 1 ? gap(1) : ',' + (gap(0) === '' ? ' ' : gap(0));
  for (const a of added) out += (emitted++ === 0 ? gap(0) : sep) + a;
  return out + text.slice(elements.at(-1)!.end, close) + foot;
}

function skipWs(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  return i;
}

/** End (exclusive) of the JSON value starting at `i`; JSON.parse of the span checks it is valid. */
function scanValue(text: string, i: number, fail: (at: number, why: string) => never): number {
  const c = text[i];
  if (c === '"') return scanString(text, i, fail);
  if (c !== '{' && c !== '[') {
    let j = i;
    while (j < text.length && !',]} \t\r\n'.includes(text[j]!)) j++;
    return j === i ? fail(i, 'expected a value') : j;
  }
  const stack: string[] = [];
  for (let j = i; j < text.length; j++) {
    const ch = text[j]!;
    if (ch === '"') {
      j = scanString(text, j, fail) - 1;
    } else if (ch === '{' || ch === '[') {
      stack.push(ch === '{' ? '}' : ']');
      if (stack.length > MAX_DEPTH) fail(j, `nested deeper than ${MAX_DEPTH}`);
    } else if (ch === '}' || ch === ']') {
      if (stack.pop() !== ch) fail(j, `unexpected "${ch}"`);
      if (stack.length === 0) return j + 1;
    }
  }
  return fail(text.length, 'unterminated value');
}

function scanString(text: string, i: number, fail: (at: number, why: string) => never): number {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j + 1;
  }
  return fail(i, 'unterminated string');
}
