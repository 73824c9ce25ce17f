/**
 * A strict, namespace-aware XML 1.0 parser for TSLs; the tree it builds is in xml-dom.ts.
 *
 * Why our own: @xmldom/xmldom took ~0.4 s for gematik's 640 kB list and xml-crypto another ~1.5 s over
 * its DOM; this one-pass scanner builds the tree in tens of milliseconds (bench/tsl.mjs compares
 * parsing plus XMLDSig with xmlsec1).
 *
 * What it refuses, because the document is hostile (the caller has already refused any DTD, so no
 * entity other than the five predefined ones and character references can exist):
 * - anything not well-formed: unclosed or mismatched tags, a second root, text outside the root, `<` in
 *   attribute values, `]]>` in text, `--` in comments, bad names, duplicate attributes, undeclared
 *   prefixes, characters outside XML 1.0's Char production — like libxml2, whose verdicts we match;
 * - nesting deeper than MAX_DEPTH (recursion and stack use stay bounded), and more than MAX_ATTRIBUTES
 *   on one element.
 */
import { XmlComment, XmlDocument, XmlElement, XmlPI, XmlText, type XmlAttr, type XmlParent } from './xml-dom.js';

export { XmlComment, XmlDocument, XmlElement, XmlPI, XmlText, type XmlAttr, type XmlChild } from './xml-dom.js';

export const MAX_DEPTH = 256;
export const MAX_ATTRIBUTES = 256;
export const NS_XML = 'http://www.w3.org/XML/1998/namespace';
export const NS_XMLNS = 'http://www.w3.org/2000/xmlns/';

export class XmlSyntaxError extends Error {}

// XML 1.0 (5th ed.) Name production; a QName has at most one colon, not at either end.
const NAME_START =
  ':A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\uD800-\\uDBFF\\uDC00-\\uDFFF';
const NAME = new RegExp(`[${NAME_START}][${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040]*`, 'y');
// Characters outside XML 1.0's Char production (surrogates are paired: the text came from strict UTF-8).
const BAD_CHAR = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

interface Binding {
  prefix: string;
  uri: string;
  depth: number;
}

function lookup(scope: Binding[], prefix: string): string | undefined {
  for (let i = scope.length - 1; i >= 0; i--) if (scope[i]!.prefix === prefix) return scope[i]!.uri;
  return undefined;
}

/** Parses a whole document (already decoded, DTD-free). Throws XmlSyntaxError with the line. */
export function parseXml(input: string): XmlDocument {
  // Line ends are normalised before parsing (XML 1.0 §2.11), as every conforming parser does.
  const src = input.includes('\r') ? input.replace(/\r\n?/g, '\n') : input;
  const bad = BAD_CHAR.exec(src);
  if (bad) throw syntax(src, bad.index, `character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()} is not allowed in XML`);
  const doc = new XmlDocument();
  let pos = src.charCodeAt(0) === 0xfeff ? 1 : 0;
  if (src.startsWith('<?xml', pos) && /[ \t\n?]/.test(src[pos + 5] ?? '')) {
    const end = src.indexOf('?>', pos);
    if (end < 0) throw syntax(src, pos, 'unterminated XML declaration');
    if (
      !/^<\?xml[ \t\n]+version[ \t\n]*=[ \t\n]*("1\.[0-9]+"|'1\.[0-9]+')([ \t\n]+encoding[ \t\n]*=[ \t\n]*("[A-Za-z][\w.-]*"|'[A-Za-z][\w.-]*'))?([ \t\n]+standalone[ \t\n]*=[ \t\n]*("(yes|no)"|'(yes|no)'))?[ \t\n]*$/.test(
        src.slice(pos, end),
      )
    ) {
      throw syntax(src, pos, 'malformed XML declaration');
    }
    pos = end + 2;
  }
  // Namespace declarations in scope, innermost last, each with the depth of the element declaring it
  // (declarations are rare — the root, the Signature, XAdES — so a short list beats a Map per element).
  const scope: Binding[] = [{ prefix: 'xml', uri: NS_XML, depth: 0 }];
  const stack: (XmlElement | XmlDocument)[] = [doc];
  const intern = new Interner();
  const len = src.length;
  while (pos < len) {
    const parent = stack[stack.length - 1]!;
    const lt = src.indexOf('<', pos);
    const textEnd = lt < 0 ? len : lt;
    if (textEnd > pos) {
      const raw = src.slice(pos, textEnd);
      if (parent === doc) {
        if (!/^[ \t\n]*$/.test(raw)) throw syntax(src, pos, 'text outside the root element');
      } else {
        if (raw.includes(']]>')) throw syntax(src, pos + raw.indexOf(']]>'), '"]]>" in text');
        appendText(parent, raw.includes('&') ? decode(src, raw, pos) : raw.length <= Interner.MAX ? intern.get(raw) : raw);
      }
      pos = textEnd;
      if (lt < 0) break;
    }
    const c1 = src.charCodeAt(pos + 1);
    if (c1 === 0x2f /* / */) {
      const open = parent.nodeType === 1 ? (parent as XmlElement) : undefined;
      if (!open || !src.startsWith(open.qname, pos + 2) || nameEnd(src, pos + 2) !== pos + 2 + open.qname.length) {
        throw syntax(src, pos, open ? `expected </${open.qname}>` : 'end tag without a start tag');
      }
      const gt = skipSpace(src, pos + 2 + open.qname.length);
      if (src.charCodeAt(gt) !== 0x3e) throw syntax(src, gt, `malformed end tag </${open.qname}>`);
      pos = gt + 1;
      stack.pop();
      while (scope.length > 1 && scope[scope.length - 1]!.depth >= stack.length) scope.pop();
    } else if (c1 === 0x21 /* ! */) {
      if (src.startsWith('<!--', pos)) {
        const end = src.indexOf('-->', pos + 4);
        if (end < 0) throw syntax(src, pos, 'unterminated comment');
        const data = src.slice(pos + 4, end);
        if (data.includes('--') || data.endsWith('-')) throw syntax(src, pos, '"--" inside a comment');
        parent.append(new XmlComment(data));
        pos = end + 3;
      } else if (src.startsWith('<![CDATA[', pos)) {
        if (parent === doc) throw syntax(src, pos, 'CDATA outside the root element');
        const end = src.indexOf(']]>', pos + 9);
        if (end < 0) throw syntax(src, pos, 'unterminated CDATA section');
        appendText(parent, src.slice(pos + 9, end));
        pos = end + 3;
      } else throw syntax(src, pos, 'markup declarations are not accepted');
    } else if (c1 === 0x3f /* ? */) {
      NAME.lastIndex = pos + 2;
      const m = NAME.exec(src);
      if (!m || m[0].includes(':')) throw syntax(src, pos, 'malformed processing instruction');
      if (m[0].toLowerCase() === 'xml') throw syntax(src, pos, 'XML declaration not at the start of the document');
      const end = src.indexOf('?>', NAME.lastIndex);
      if (end < 0) throw syntax(src, pos, 'unterminated processing instruction');
      const rest = src.slice(NAME.lastIndex, end);
      if (rest !== '' && !/^[ \t\n]/.test(rest)) throw syntax(src, pos, 'malformed processing instruction');
      parent.append(new XmlPI(m[0], rest.replace(/^[ \t\n]+/, '')));
      pos = end + 2;
    } else {
      pos = startTag(src, pos, parent, doc, stack, scope, intern);
    }
  }
  if (stack.length > 1) throw syntax(src, len, `unclosed element <${(stack[stack.length - 1] as XmlElement).qname}>`);
  if (!doc.documentElement) throw syntax(src, len, 'no root element');
  return doc;
}

function startTag(
  src: string,
  at: number,
  parent: XmlElement | XmlDocument,
  doc: XmlDocument,
  stack: (XmlElement | XmlDocument)[],
  scope: Binding[],
  intern: Interner,
): number {
  const nEnd = nameEnd(src, at + 1);
  if (nEnd === at + 1) throw syntax(src, at, 'malformed start tag');
  const qname = intern.get(src.slice(at + 1, nEnd));
  let pos = nEnd;
  // Attributes are collected as written (namespace declarations included) and resolved once the
  // element's own declarations are known, since a declaration may follow the attribute using it.
  let pending: XmlAttr[] | undefined;
  let declares = false;
  let selfClosing = false;
  for (;;) {
    const next = skipSpace(src, pos);
    const spaced = next > pos;
    pos = next;
    const c = src.charCodeAt(pos);
    if (c === 0x3e /* > */) {
      pos++;
      break;
    }
    if (c === 0x2f /* / */ && src.charCodeAt(pos + 1) === 0x3e) {
      selfClosing = true;
      pos += 2;
      break;
    }
    if (!spaced) throw syntax(src, pos, `malformed start tag <${qname}>`);
    const aEnd = nameEnd(src, pos);
    if (aEnd === pos) throw syntax(src, pos, `malformed attribute in <${qname}>`);
    const aName = intern.get(src.slice(pos, aEnd));
    pos = skipSpace(src, aEnd);
    if (src.charCodeAt(pos) !== 0x3d /* = */) throw syntax(src, pos, `attribute ${aName} without a value`);
    pos = skipSpace(src, pos + 1);
    const quote = src[pos];
    if (quote !== '"' && quote !== "'") throw syntax(src, pos, `attribute ${aName}: value not quoted`);
    const end = src.indexOf(quote, pos + 1);
    if (end < 0) throw syntax(src, pos, `attribute ${aName}: unterminated value`);
    const raw = intern.get(src.slice(pos + 1, end));
    if (raw.includes('<')) throw syntax(src, pos, `attribute ${aName}: "<" in a value`);
    pending ??= [];
    // Linear: at most MAX_ATTRIBUTES, and a Set per element would cost more for the usual one or two.
    if (pending.some((p) => p.qname === aName)) throw syntax(src, pos, `attribute ${aName} given twice`);
    if (pending.length >= MAX_ATTRIBUTES) throw syntax(src, pos, `more than ${MAX_ATTRIBUTES} attributes on <${qname}>`);
    // Attribute-value normalisation (§3.3.3): literal white space becomes a space; references do not.
    const spacedValue = raw.includes('\t') || raw.includes('\n') ? raw.replace(/[\t\n]/g, ' ') : raw;
    if (aName === 'xmlns' || aName.startsWith('xmlns:')) declares = true;
    pending.push({
      qname: aName,
      prefix: '',
      localName: aName,
      namespaceURI: '',
      value: spacedValue.includes('&') ? decode(src, spacedValue, pos + 1) : spacedValue,
    });
    pos = end + 1;
  }
  const depth = stack.length;
  if (depth > MAX_DEPTH) throw syntax(src, at, `elements nested deeper than ${MAX_DEPTH}`);
  let namespaces = NO_NAMESPACES;
  if (declares) {
    namespaces = [];
    for (const p of pending!) {
      if (p.qname !== 'xmlns' && !p.qname.startsWith('xmlns:')) continue;
      const prefix = p.qname === 'xmlns' ? '' : p.qname.slice(6);
      if (prefix !== '' && !validNcName(prefix)) throw syntax(src, at, `bad namespace prefix ${prefix}`);
      if (prefix === 'xmlns' || p.value === NS_XMLNS) throw syntax(src, at, 'the xmlns prefix and namespace cannot be declared');
      if ((prefix === 'xml') !== (p.value === NS_XML)) throw syntax(src, at, 'the xml prefix is bound to its own namespace only');
      if (prefix !== '' && p.value === '') throw syntax(src, at, `namespace prefix ${prefix} declared empty`);
      scope.push({ prefix, uri: p.value, depth });
      if (prefix !== 'xml') namespaces.push([prefix, p.value]);
    }
  }
  let attributes = NO_ATTRIBUTES;
  if (pending) {
    attributes = declares ? pending.filter((p) => p.qname !== 'xmlns' && !p.qname.startsWith('xmlns:')) : pending;
    for (const a of attributes) {
      const colon = a.qname.indexOf(':');
      if (colon < 0) continue; // unprefixed attributes are in no namespace (Namespaces §6.2)
      a.prefix = a.qname.slice(0, colon);
      a.localName = a.qname.slice(colon + 1);
      a.namespaceURI = resolvePrefix(src, at, scope, a.prefix, a.localName, a.qname);
      // Two prefixes bound to one namespace must not smuggle in the same attribute twice.
      if (attributes.some((b) => b !== a && b.localName === a.localName && b.namespaceURI === a.namespaceURI))
        throw syntax(src, at, `attribute {${a.namespaceURI}}${a.localName} given twice`);
    }
  }
  const colon = qname.indexOf(':');
  const prefix = colon < 0 ? '' : qname.slice(0, colon);
  const local = colon < 0 ? qname : qname.slice(colon + 1);
  const ns = colon < 0 ? (lookup(scope, '') ?? '') : resolvePrefix(src, at, scope, prefix, local, qname);
  const el = new XmlElement(qname, prefix, local, ns, attributes, namespaces);
  if (parent === doc) {
    if (doc.documentElement) throw syntax(src, at, 'a second root element');
    doc.documentElement = el;
  }
  parent.append(el);
  doc.elements.push(el);
  if (selfClosing) while (scope.length > 1 && scope[scope.length - 1]!.depth >= depth) scope.pop();
  else stack.push(el);
  return pos;
}

const NO_ATTRIBUTES: XmlAttr[] = [];
const NO_NAMESPACES: [string, string][] = [];

function resolvePrefix(src: string, at: number, scope: Binding[], prefix: string, local: string, name: string): string {
  if (!validNcName(prefix) || !validNcName(local)) throw syntax(src, at, `bad qualified name ${name}`);
  const uri = lookup(scope, prefix);
  if (uri === undefined) throw syntax(src, at, `namespace prefix ${prefix} is not declared (in ${name})`);
  return uri;
}

// Name characters by code for ASCII (1 = may start a name, 2 = may only continue one).
const NAME_ASCII = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  NAME_ASCII[c] = /[:A-Z_a-z]/.test(ch) ? 1 : /[-.0-9]/.test(ch) ? 2 : 0;
}

/** Where the Name starting at `pos` ends (`pos` if there is none): char codes for ASCII, the regex beyond. */
function nameEnd(src: string, pos: number): number {
  const c0 = src.charCodeAt(pos);
  if (c0 >= 0x80) return regexNameEnd(src, pos);
  if (NAME_ASCII[c0] !== 1) return pos;
  let i = pos + 1;
  for (;;) {
    const c = src.charCodeAt(i);
    if (c < 0x80) {
      if (NAME_ASCII[c] === 0) return i;
      i++;
    } else return c >= 0x80 ? regexNameEnd(src, pos) : i; // NaN: the end of the text
  }
}

function regexNameEnd(src: string, pos: number): number {
  NAME.lastIndex = pos;
  return NAME.exec(src) ? NAME.lastIndex : pos;
}

function skipSpace(src: string, pos: number): number {
  let c = src.charCodeAt(pos);
  while (c === 0x20 || c === 0x0a || c === 0x09) c = src.charCodeAt(++pos);
  return pos;
}

/**
 * One string per distinct short name or text: the slice taken while scanning dies young (cheap),
 * the shared copy survives once instead of once per element (indentation, element names, status URIs).
 */
class Interner {
  static readonly MAX = 64;
  private readonly seen = new Map<string, string>();
  get(s: string): string {
    if (s.length > Interner.MAX) return s;
    const had = this.seen.get(s);
    if (had !== undefined) return had;
    this.seen.set(s, s);
    return s;
  }
}

function validNcName(s: string): boolean {
  NAME.lastIndex = 0;
  const m = NAME.exec(s);
  return !!m && m[0] === s && !s.includes(':');
}

function appendText(parent: XmlParent, data: string): void {
  const last = parent.lastChild;
  // Adjacent text (text, CDATA, text) is one text node, as in the XPath data model c14n works on.
  if (last?.nodeType === 3) last.data += data;
  else parent.append(new XmlText(data));
}

/** Resolves the predefined entities and character references in text or an attribute value. */
function decode(src: string, raw: string, at: number): string {
  return raw.replace(/&([^;&]*)(;?)/g, (whole, ref: string, semi: string) => {
    if (!semi) throw syntax(src, at, `"&" not starting a reference: ${JSON.stringify(whole.slice(0, 12))}`);
    const named = PREDEFINED[ref];
    if (named !== undefined) return named;
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ref);
    if (!m) throw syntax(src, at, `unknown entity &${ref.slice(0, 20)}; (only the five predefined ones exist without a DTD)`);
    const cp = m[1] !== undefined ? parseInt(m[1], 16) : parseInt(m[2]!, 10);
    if (!isXmlChar(cp)) throw syntax(src, at, `character reference &${ref}; is not an XML character`);
    return String.fromCodePoint(cp);
  });
}

function syntax(src: string, at: number, message: string): XmlSyntaxError {
  let line = 1;
  for (let i = src.indexOf('\n'); i >= 0 && i < at; i = src.indexOf('\n', i + 1)) line++;
  return new XmlSyntaxError(`line ${line}: ${message}`);
}
