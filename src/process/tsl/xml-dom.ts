/**
 * The tree xml-parser.ts builds: the shapes of dom.ts (what the TSL model reads) plus what
 * canonicalisation needs — prefixes, namespace declarations, attributes in document order.
 */
import type { XDocument, XElement, XNode } from './dom.js';

export interface XmlAttr {
  qname: string;
  prefix: string;
  localName: string;
  namespaceURI: string;
  value: string;
}

// Node kinds and the null names of non-elements are prototype getters, not instance fields: every
// field is paid ~40,000 times for a 1 MB list, and surviving objects are what the young-generation
// garbage collector copies.
abstract class BaseNode {
  parentNode: XmlElement | XmlDocument | null = null;
  nextSibling: XmlChild | null = null;
  get firstChild(): XmlChild | null {
    return null;
  }
  get textContent(): string | null {
    return null;
  }
}

/** Text, comments and PIs: no name, no namespace, no children. */
abstract class LeafNode extends BaseNode {
  get localName(): null {
    return null;
  }
  get namespaceURI(): null {
    return null;
  }
}

export class XmlText extends LeafNode implements XNode {
  get nodeType(): 3 {
    return 3;
  }
  constructor(public data: string) {
    super();
  }
  override get textContent(): string {
    return this.data;
  }
}

export class XmlComment extends LeafNode implements XNode {
  get nodeType(): 8 {
    return 8;
  }
  constructor(public data: string) {
    super();
  }
}

export class XmlPI extends LeafNode implements XNode {
  get nodeType(): 7 {
    return 7;
  }
  constructor(
    public target: string,
    public data: string,
  ) {
    super();
  }
}

export abstract class XmlParent extends BaseNode {
  // A linked list, not an array per element: one allocation less for each of ~20,000 elements, which
  // showed up as garbage-collector time while parsing a 1 MB list.
  head: XmlChild | null = null;
  lastChild: XmlChild | null = null;
  override get firstChild(): XmlChild | null {
    return this.head;
  }
  /** The children as an array (built on each call; hot paths follow firstChild/nextSibling). */
  get childNodes(): XmlChild[] {
    const out: XmlChild[] = [];
    for (let c = this.head; c; c = c.nextSibling) out.push(c);
    return out;
  }
  append(node: XmlChild): void {
    if (this.lastChild) this.lastChild.nextSibling = node;
    else this.head = node;
    node.parentNode = this as unknown as XmlElement | XmlDocument;
    this.lastChild = node;
  }
  /** Elements below this node with the namespace and local name, in document order. */
  getElementsByTagNameNS(ns: string, name: string): { readonly length: number; item(i: number): XmlElement | null } {
    const out: XmlElement[] = [];
    const walk = (n: XmlParent): void => {
      for (let c = n.head; c; c = c.nextSibling) {
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
  get nodeType(): 1 {
    return 1;
  }
  readonly localName: string;
  readonly namespaceURI: string;
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
      for (let c = n.head; c; c = c.nextSibling) {
        if (c.nodeType === 3) s += c.data;
        else if (c.nodeType === 1) walk(c);
      }
    };
    walk(this);
    return s;
  }
}

export class XmlDocument extends XmlParent implements XDocument {
  get nodeType(): 9 {
    return 9;
  }
  get localName(): null {
    return null;
  }
  get namespaceURI(): null {
    return null;
  }
  documentElement: XmlElement | null = null;
  /** Every element in document order (built while parsing: searches need no tree walk). */
  readonly elements: XmlElement[] = [];
  override getElementsByTagNameNS(ns: string, name: string): { readonly length: number; item(i: number): XmlElement | null } {
    const out = this.elements.filter((e) => e.localName === name && e.namespaceURI === ns);
    return { length: out.length, item: (i) => out[i] ?? null };
  }
}

export type XmlChild = XmlElement | XmlText | XmlComment | XmlPI;
