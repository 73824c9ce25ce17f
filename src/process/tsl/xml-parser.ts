/**
 * A strict, namespace-aware XML 1.0 parser for TSLs, and the small DOM it builds (the shapes of
 * dom.ts, plus what canonicalisation needs: prefixes, namespace declarations, attributes in order).
 *
 * Why our own: @xmldom/xmldom took ~0.4 s for gematik's 640 kB list and xml-crypto another ~1.5 s over
 * its DOM; this one-pass scanner builds the tree in a few milliseconds, so parsing plus XMLDSig stays
 * within 2× of xmlsec1 (libxml2) as a whole process (bench/tsl.mjs).
 *
 * What it refuses, because the document is hostile (the caller has already refused any DTD, so no
 * entity other than the five predefined ones and character references can exist):
 * - anything not well-formed: unclosed or mismatched tags, a second root, text outside the root, `<` in
 *   attribute values, `]]>` in text, `--` in comments, bad names, duplicate attributes, undeclared
 *   prefixes, characters outside XML 1.0's Char production — like libxml2, whose verdicts we match;
 * - nesting deeper than MAX_DEPTH (recursion and stack use stay bounded), and more than MAX_ATTRIBUTES
 *   on one element.
 */
import type { XDocument, XElement, XNode } from './dom.js';

export const MAX_DEPTH = 256;
export const MAX_ATTRIBUTES = 256;
export const NS_XML = 'http://www.w3.org/XML/1998/namespace';
export const NS_XMLNS = 'http://www.w3.org/2000/xmlns/';

export class XmlSyntaxError extends Error {}

export interface XmlAttr {
  qname: string;
  prefix: string;
  localName: string;
  namespaceURI: string;
  value: string;
}

abstract class BaseNode implements XNode {
  abstract readonly nodeType: number;
  parentNode: XmlParent | null = null;
  nextSibling: XmlChild | null = null;
  readonly localName: string | null = null;
  readonly namespaceURI: string | null = null;
  get firstChild(): XmlChild | null {
    return null;
  }
  get textContent(): string | null {
    return null;
  }
}

export class XmlText extends BaseNode {
  readonly nodeType = 3;
  constructor(public data: string) {
    super();
  }
  override get textContent(): string {
    return this.data;
  }
}

export class XmlComment extends BaseNode {
  readonly nodeType = 8;
  constructor(public data: string) {
    super();
  }
}

export class XmlPI extends BaseNode {
  readonly nodeType = 7;
  constructor(
    public target: string,
    public data: string,
  ) {
    super();
  }
}

abstract class XmlParent extends BaseNode {
  readonly childNodes: XmlChild[] = [];
  override get firstChild(): XmlChild | null {
    return this.childNodes[0] ?? null;
  }
  append(node: XmlChild): void {
    const last = this.childNodes[this.childNodes.length - 1];
    if (last) last.nextSibling = node;
    node.parentNode = this;
    this.childNodes.push(node);
  }
  /** Elements below this node with the namespace and local name, in document order. */
  getElementsByTagNameNS(ns: string, name: string): { readonly length: number; item(i: number): XmlElement | null } {
    const out: XmlElement[] = [];
    const walk = (n: XmlParent): void => {
      for (const c of n.childNodes) {
        if (c.nodeType === 1) {
          if (c.localName === name && c.namespaceURI === ns) out.push(c);
          walk(c);
        }
      }
    };
    walk(this);
    return { length: out.length, item: (i) => out[i] ?? null };
  }
}

export class XmlElement extends XmlParent implements XElement {
  readonly nodeType = 1;
  override readonly localName: string;
  override readonly namespaceURI: string;
  constructor(
    readonly qname: string,
    readonly prefix: string,
    localName: string,
    namespaceURI: string,
    /** Attributes other than namespace declarations, in document order. */
    readonly attributes: XmlAttr[],
    /** Namespace declarations on this element: [prefix ('' = default), URI]. */
    readonly namespaces: [string, string][],
  ) {
    super();
    this.localName = localName;
    this.namespaceURI = namespaceURI;
  }
  getAttribute(name: string): string | null {
    for (const a of this.attributes) if (a.qname === name) return a.value;
    return null;
  }
  hasAttribute(name: string): boolean {
    return this.getAttribute(name) !== null;
  }
  override get textContent(): string {
    let s = '';
    const walk = (n: XmlParent): void => {
      for (const c of n.childNodes) {
        if (c.nodeType === 3) s += c.data;
        else if (c.nodeType === 1) walk(c);
      }
    };
    walk(this);
    return s;
  }
}

export class XmlDocument extends XmlParent implements XDocument {
  readonly nodeType = 9;
  documentElement: XmlElement | null = null;
  /** Every element in document order (built while parsing: searches need no tree walk). */
  readonly elements: XmlElement[] = [];
  override getElementsByTagNameNS(ns: string, name: string): { readonly length: number; item(i: number): XmlElement | null } {
    const out = this.elements.filter((e) => e.localName === name && e.namespaceURI === ns);
    return { length: out.length, item: (i) => out[i] ?? null };
  }
}

export type XmlChild = XmlElement | XmlText | XmlComment | XmlPI;

// XML 1.0 (5th ed.) Name production; a QName has at most one colon, not at either end.
const NAME_START = ':A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\uD800-\\uDBFF\\uDC00-\\uDFFF';
const NAME = new RegExp(`[${NAME_START}][${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040]*`, 'y');
const SPACE = /[ \t\n]*/y;
// Characters outside XML 1.0's Char production (surrogates are paired: the text came from strict UTF-8).
const BAD_CHAR = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

interface Pending {
  qname: string;
  value: string;
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
    if (!/^<\?xml[ \t\n]+version[ \t\n]*=[ \t\n]*("1\.[0-9]+"|'1\.[0-9]+')([ \t\n]+encoding[ \t\n]*=[ \t\n]*("[A-Za-z][\w.-]*"|'[A-Za-z][\w.-]*'))?([ \t\n]+standalone[ \t\n]*=[ \t\n]*("(yes|no)"|'(yes|no)'))?[ \t\n]*$/.test(src.slice(pos, end))) {
      throw syntax(src, pos, 'malformed XML declaration');
    }
    pos = end + 2;
  }
  // Namespace declarations in scope, innermost last, each with the depth of the element declaring it
  // (declarations are rare — the root, the Signature, XAdES — so a short list beats a Map per element).
  const scope: Binding[] = [{ prefix: 'xml', uri: NS_XML, depth: 0 }];
  const stack: XmlParent[] = [doc];
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
        appendText(parent, raw.includes('&') ? decode(src, raw, pos) : raw);
      }
      pos = textEnd;
      if (lt < 0) break;
    }
    const c1 = src.charCodeAt(pos + 1);
    if (c1 === 0x2f /* / */) {
      NAME.lastIndex = pos + 2;
      const m = NAME.exec(src);
      const open = parent instanceof XmlElement ? parent : undefined;
      if (!m || !open || m[0] !== open.qname) throw syntax(src, pos, open ? `expected </${open.qname}>` : 'end tag without a start tag');
      SPACE.lastIndex = NAME.lastIndex;
      SPACE.exec(src);
      if (src.charCodeAt(SPACE.lastIndex) !== 0x3e) throw syntax(src, SPACE.lastIndex, `malformed end tag </${open.qname}>`);
      pos = SPACE.lastIndex + 1;
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
      pos = startTag(src, pos, parent, doc, stack, scope);
    }
  }
  if (stack.length > 1) throw syntax(src, len, `unclosed element <${(stack[stack.length - 1] as XmlElement).qname}>`);
  if (!doc.documentElement) throw syntax(src, len, 'no root element');
  return doc;
}

function startTag(
  src: string,
  at: number,
  parent: XmlParent,
  doc: XmlDocument,
  stack: XmlParent[],
  scope: Binding[],
): number {
  NAME.lastIndex = at + 1;
  const m = NAME.exec(src);
  if (!m) throw syntax(src, at, 'malformed start tag');
  const qname = m[0];
  let pos = NAME.lastIndex;
  const pending: Pending[] = [];
  let selfClosing = false;
  for (;;) {
    SPACE.lastIndex = pos;
    SPACE.exec(src);
    const spaced = SPACE.lastIndex > pos;
    pos = SPACE.lastIndex;
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
    NAME.lastIndex = pos;
    const a = NAME.exec(src);
    if (!a) throw syntax(src, pos, `malformed attribute in <${qname}>`);
    pos = NAME.lastIndex;
    SPACE.lastIndex = pos;
    SPACE.exec(src);
    pos = SPACE.lastIndex;
    if (src.charCodeAt(pos) !== 0x3d /* = */) throw syntax(src, pos, `attribute ${a[0]} without a value`);
    SPACE.lastIndex = pos + 1;
    SPACE.exec(src);
    pos = SPACE.lastIndex;
    const quote = src[pos];
    if (quote !== '"' && quote !== "'") throw syntax(src, pos, `attribute ${a[0]}: value not quoted`);
    const end = src.indexOf(quote, pos + 1);
    if (end < 0) throw syntax(src, pos, `attribute ${a[0]}: unterminated value`);
    const raw = src.slice(pos + 1, end);
    if (raw.includes('<')) throw syntax(src, pos, `attribute ${a[0]}: "<" in a value`);
    // Linear: at most MAX_ATTRIBUTES, and a Set per element would cost more for the usual one or two.
    if (pending.some((p) => p.qname === a[0])) throw syntax(src, pos, `attribute ${a[0]} given twice`);
    if (pending.length >= MAX_ATTRIBUTES) throw syntax(src, pos, `more than ${MAX_ATTRIBUTES} attributes on <${qname}>`);
    // Attribute-value normalisation (§3.3.3): literal white space becomes a space; references do not.
    const spaced2 = /[\t\n]/.test(raw) ? raw.replace(/[\t\n]/g, ' ') : raw;
    pending.push({ qname: a[0], value: spaced2.includes('&') ? decode(src, spaced2, pos + 1) : spaced2 });
    pos = end + 1;
  }
  if (stack.length > MAX_DEPTH) throw syntax(src, at, `elements nested deeper than ${MAX_DEPTH}`);
  const depth = stack.length;
  const namespaces: [string, string][] = [];
  for (const p of pending) {
    if (p.qname === 'xmlns' || p.qname.startsWith('xmlns:')) {
      const prefix = p.qname === 'xmlns' ? '' : p.qname.slice(6);
      if (prefix !== '' && !validNcName(prefix)) throw syntax(src, at, `bad namespace prefix ${prefix}`);
      if (prefix === 'xmlns' || p.value === NS_XMLNS) throw syntax(src, at, 'the xmlns prefix and namespace cannot be declared');
      if ((prefix === 'xml') !== (p.value === NS_XML)) throw syntax(src, at, 'the xml prefix is bound to its own namespace only');
      if (prefix !== '' && p.value === '') throw syntax(src, at, `namespace prefix ${prefix} declared empty`);
      scope.push({ prefix, uri: p.value, depth });
      if (prefix !== 'xml') namespaces.push([prefix, p.value]);
    }
  }
  const [prefix, local, ns] = resolveName(src, at, scope, qname, false);
  const attributes: XmlAttr[] = [];
  for (const p of pending) {
    if (p.qname === 'xmlns' || p.qname.startsWith('xmlns:')) continue;
    const [ap, al, au] = resolveName(src, at, scope, p.qname, true);
    // Two prefixes bound to one namespace must not smuggle in the same attribute twice.
    if (ap !== '' && attributes.some((b) => b.localName === al && b.namespaceURI === au)) throw syntax(src, at, `attribute {${au}}${al} given twice`);
    attributes.push({ qname: p.qname, prefix: ap, localName: al, namespaceURI: au, value: p.value });
  }
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

/** [prefix, local name, namespace URI]; unprefixed attributes are in no namespace (Namespaces §6.2). */
function resolveName(src: string, at: number, scope: Binding[], name: string, isAttr: boolean): [string, string, string] {
  const i = name.indexOf(':');
  if (i < 0) return ['', name, isAttr ? '' : (lookup(scope, '') ?? '')];
  const prefix = name.slice(0, i);
  const local = name.slice(i + 1);
  if (!validNcName(prefix) || !validNcName(local)) throw syntax(src, at, `bad qualified name ${name}`);
  const uri = lookup(scope, prefix);
  if (uri === undefined) throw syntax(src, at, `namespace prefix ${prefix} is not declared (in ${name})`);
  return [prefix, local, uri];
}

function validNcName(s: string): boolean {
  NAME.lastIndex = 0;
  const m = NAME.exec(s);
  return !!m && m[0] === s && !s.includes(':');
}

function appendText(parent: XmlParent, data: string): void {
  const last = parent.childNodes[parent.childNodes.length - 1];
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
