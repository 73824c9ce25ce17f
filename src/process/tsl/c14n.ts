/**
 * Canonical XML 1.0 (inclusive) and Exclusive XML Canonicalization 1.0, with or without comments, over
 * a whole document or one element's subtree, optionally leaving one element out (the enveloped-signature
 * transform). One pass over the tree; the output goes to a sink in chunks, so a digest can consume it
 * without the canonical form of a 1 MB list ever existing as one string.
 *
 * Only the node-sets XMLDSig's same-document references produce are supported (the whole document, or
 * an element subtree, minus the signature): exactly what ETSI TSLs use. That keeps the rules simple:
 * every element of the subtree is output, so "nearest output ancestor" is the parent inside the apex.
 */
import { NS_XML, XmlComment, XmlDocument, XmlElement, XmlPI, type XmlAttr, type XmlChild } from './xml-parser.js';

export interface C14nOptions {
  exclusive: boolean;
  comments: boolean;
  /** Exclusive c14n only: prefixes treated as in inclusive c14n ('' for #default), from InclusiveNamespaces. */
  inclusivePrefixes?: string[];
  /** Left out with its subtree (the Signature, for the enveloped-signature transform). */
  exclude?: XmlElement;
}

export class C14nError extends Error {}

const FLUSH_AT = 1 << 16;
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const NONE: XmlAttr[] = [];

/** Canonicalises `apex` and hands the UTF-8 text to `sink` in pieces of about 64 K characters. */
export function canonicalize(apex: XmlDocument | XmlElement, options: C14nOptions, sink: (chunk: string) => void): void {
  let buf = '';
  const out = (s: string): void => {
    buf += s;
    if (buf.length >= FLUSH_AT) {
      sink(buf);
      buf = '';
    }
  };
  const inclusivePrefixes = new Set(options.inclusivePrefixes ?? []);
  const plainTags = new Map<string, [open: string, close: string]>();

  const element = (el: XmlElement, inScope: Map<string, string>, rendered: Map<string, string>, extraAttrs: XmlAttr[]): void => {
    // In-scope namespaces of this element (declarations override the parent's).
    let scope = inScope;
    if (el.namespaces.length > 0) {
      scope = new Map(inScope);
      for (const [p, u] of el.namespaces) {
        // Canonical XML has no defined result for relative namespace URIs; libxml2 (xmlsec1) refuses them.
        if (u !== '' && !ABSOLUTE_URI.test(u)) throw new C14nError(`namespace URI ${JSON.stringify(u)} on <${el.qname}> is relative; canonical XML refuses it`);
        scope.set(p, u);
      }
    }
    // Candidates: every in-scope namespace (inclusive), or the visibly utilised ones (exclusive).
    let candidates: Iterable<string>;
    if (!options.exclusive) candidates = new Set(['', ...scope.keys()]);
    else if (inclusivePrefixes.size === 0 && !el.attributes.some((a) => a.prefix !== '')) candidates = [el.prefix];
    else {
      const used = new Set<string>([el.prefix]);
      for (const a of el.attributes) if (a.prefix !== '' && a.prefix !== 'xml') used.add(a.prefix);
      for (const p of inclusivePrefixes) if (p === '' || scope.has(p)) used.add(p);
      candidates = used;
    }
    let renders: [string, string][] | undefined;
    for (const p of candidates) {
      const uri = scope.get(p) ?? '';
      // Rendered when the nearest output ancestor did not render the same binding; an empty default
      // namespace (xmlns="") only to undo a non-empty one rendered above.
      if ((rendered.get(p) ?? '') !== uri) (renders ??= []).push([p, uri]);
    }
    let childRendered = rendered;
    let tag = renders || el.attributes.length > 0 || extraAttrs.length > 0 ? '<' + el.qname : '';
    if (renders) {
      renders.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      childRendered = new Map(rendered);
      for (const [p, u] of renders) {
        childRendered.set(p, u);
        tag += (p === '' ? ' xmlns="' : ' xmlns:' + p + '="') + escapeAttr(u) + '"';
      }
    }
    const attrs = extraAttrs.length > 0 ? [...el.attributes, ...extraAttrs] : el.attributes;
    if (attrs.length > 0) {
      const sorted = attrs.length > 1 ? [...attrs].sort(compareAttrs) : attrs;
      for (const a of sorted) tag += ' ' + a.qname + '="' + escapeAttr(a.value) + '"';
    }
    let tags = plainTags.get(el.qname);
    if (!tags) plainTags.set(el.qname, (tags = ['<' + el.qname + '>', '</' + el.qname + '>']));
    // Most elements have no attribute and render no namespace: their tags are built once per name.
    out(renders || attrs.length > 0 ? tag + '>' : tags[0]);
    for (let c = el.head; c; c = c.nextSibling) node(c, scope, childRendered);
    out(tags[1]);
  };

  // nodeType tests, not instanceof: this runs once per node of a 1 MB list and stays monomorphic.
  const node = (c: XmlChild, scope: Map<string, string>, rendered: Map<string, string>): void => {
    if (c.nodeType === 3) out(escapeText(c.data));
    else if (c.nodeType === 1) {
      if (c !== options.exclude) element(c, scope, rendered, NONE);
    } else if (c.nodeType === 8) {
      if (options.comments) out('<!--' + c.data + '-->');
    } else out('<?' + c.target + (c.data ? ' ' + c.data : '') + '?>');
  };

  if (apex instanceof XmlDocument) {
    // Outside the root element: PIs (and comments) each on their own line (c14n §2.1).
    let afterRoot = false;
    for (let c = apex.head; c; c = c.nextSibling) {
      if (c instanceof XmlElement) {
        if (c !== options.exclude) element(c, new Map(), new Map(), NONE);
        afterRoot = true;
      } else if (c instanceof XmlPI || (c instanceof XmlComment && options.comments)) {
        if (afterRoot) out('\n');
        node(c, new Map(), new Map());
        if (!afterRoot) out('\n');
      }
    }
  } else {
    // A subtree: the apex inherits the namespaces in scope from its ancestors (rendered as needed),
    // and in inclusive c14n also the xml:* attributes of its ancestors (c14n §2.4).
    const scope = new Map<string, string>();
    const xmlAttrs = new Map<string, XmlAttr>();
    const chain: XmlElement[] = [];
    for (let p = apex.parentNode; p instanceof XmlElement; p = p.parentNode) chain.unshift(p);
    for (const anc of chain) {
      for (const [p, u] of anc.namespaces) scope.set(p, u);
      for (const a of anc.attributes) if (a.namespaceURI === NS_XML) xmlAttrs.set(a.localName, a);
    }
    const extra = options.exclusive
      ? []
      : [...xmlAttrs.values()].filter((a) => !apex.attributes.some((b) => b.namespaceURI === NS_XML && b.localName === a.localName));
    element(apex, scope, new Map(), extra);
  }
  if (buf) sink(buf);
}

function compareAttrs(a: XmlAttr, b: XmlAttr): number {
  // By namespace URI (no namespace first), then local name; code-unit order as c14n prescribes.
  if (a.namespaceURI !== b.namespaceURI) return a.namespaceURI < b.namespaceURI ? -1 : 1;
  return a.localName < b.localName ? -1 : a.localName > b.localName ? 1 : 0;
}

const TEXT_SPECIAL = /[&<>\r]/;
const ATTR_SPECIAL = /[&<"\t\n\r]/;
const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\t': '&#x9;', '\n': '&#xA;', '\r': '&#xD;' };

function escapeText(s: string): string {
  return TEXT_SPECIAL.test(s) ? s.replace(/[&<>\r]/g, (c) => ESC[c]!) : s;
}

function escapeAttr(s: string): string {
  return ATTR_SPECIAL.test(s) ? s.replace(/[&<"\t\n\r]/g, (c) => ESC[c]!) : s;
}
