/**
 * Safe XML intake for TSLs. The TSL comes from the payload, so it is hostile until checked:
 * - No DTD at all. ETSI TS 119 612 lists never need one, and a DOCTYPE is the door for external
 *   entities (file or network reads) and entity expansion bombs ("billion laughs"). We refuse the
 *   document before any parser sees it, instead of trusting a parser's entity settings.
 * - UTF-8 only. A UTF-16 document would hide `<!DOCTYPE` from the byte-level check above.
 * - Parser errors are fatal: a half-parsed DOM could silently drop services. The parser (xml-parser.ts)
 *   is strict like libxml2 and bounds nesting depth and attributes per element.
 */
import { VerifyError } from '../../errors.js';
import type { XElement } from './dom.js';
import { parseXml, XmlSyntaxError, type XmlDocument } from './xml-parser.js';

/** Real TSLs are well under 2 MB (the test TSL has 640 kB); far more is not a TSL. */
export const MAX_TSL_BYTES = 32 * 1024 * 1024;

export const NS_TSL = 'http://uri.etsi.org/02231/v2#';
export const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';

/** The parsed list: the selection and the signature check read the same tree (the text is not kept). */
export interface TslDocument {
  doc: XmlDocument;
}

export function parseTslXml(bytes: Uint8Array, file: string): TslDocument {
  if (bytes.byteLength > MAX_TSL_BYTES) throw new VerifyError(`${file}: ${bytes.byteLength} bytes is larger than a TSL can be (${MAX_TSL_BYTES})`, file);
  if (bytes[0] === 0xfe || bytes[0] === 0xff || (bytes[0] === 0 && bytes[1] !== 0) || (bytes[1] === 0 && bytes[0] !== 0)) {
    throw new VerifyError(`${file}: not UTF-8 (looks like UTF-16); TSLs are UTF-8`, file);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new VerifyError(`${file}: not valid UTF-8`, file);
  }
  const decl = /^<\?xml[^?]*encoding\s*=\s*["']([^"']+)["']/.exec(text);
  if (decl && decl[1]!.toLowerCase() !== 'utf-8') throw new VerifyError(`${file}: declares encoding ${JSON.stringify(decl[1])}; only UTF-8 is accepted`, file);
  // Case-insensitive and anywhere (even inside a comment): refusing a harmless mention is cheaper than
  // reasoning about where a parser would honour one.
  const dtd = markupDeclaration(text);
  if (dtd) {
    throw new VerifyError(
      `${file}: contains a <!${dtd[1]!.toUpperCase()} declaration; DTDs and entities are refused (external entity / entity expansion attack)`,
      file,
    );
  }
  let doc: XmlDocument;
  try {
    doc = parseXml(text);
  } catch (err) {
    if (err instanceof XmlSyntaxError) throw new VerifyError(`${file}: not well-formed XML (${err.message})`, file);
    throw err;
  }
  const root = doc.documentElement;
  if (root?.localName !== 'TrustServiceStatusList' || root.namespaceURI !== NS_TSL) {
    throw new VerifyError(`${file}: not an ETSI TSL (root element must be TrustServiceStatusList in ${NS_TSL})`, file);
  }
  return { doc };
}

/**
 * The first `<!DOCTYPE`-like declaration (case-insensitive, white space allowed after `<!`). Jumps
 * from `<!` to `<!` instead of running a case-insensitive regex over the whole megabyte.
 */
function markupDeclaration(text: string): RegExpExecArray | null {
  const decl = /^<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i;
  for (let i = text.indexOf('<!'); i >= 0; i = text.indexOf('<!', i + 2)) {
    const m = decl.exec(text.slice(i, i + 64));
    if (m) return m;
  }
  return null;
}

/** Element children with the given namespace and local name (namespace-aware, no XPath engine). */
export function children(parent: XElement | undefined, ns: string, name: string): XElement[] {
  const out: XElement[] = [];
  if (!parent) return out;
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && n.localName === name && n.namespaceURI === ns) out.push(n as XElement);
  }
  return out;
}

export function child(parent: XElement | undefined, ns: string, name: string): XElement | undefined {
  return children(parent, ns, name)[0];
}

/** Text content, surrounding whitespace trimmed (XML pretty-printing is not part of a value). */
export function text(el: XElement | undefined): string | undefined {
  const t = el?.textContent;
  return t === null || t === undefined ? undefined : t.trim();
}
