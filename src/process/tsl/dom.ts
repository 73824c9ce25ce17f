/**
 * The few DOM shapes the TSL model and selection code read; xml-parser.ts builds a tree with them.
 * Local interfaces rather than TypeScript's browser "dom" library, which would change the types of
 * fetch and streams everywhere else.
 */

export interface XNode {
  readonly nodeType: number;
  readonly localName: string | null;
  readonly namespaceURI: string | null;
  readonly firstChild: XNode | null;
  readonly nextSibling: XNode | null;
  readonly parentNode: XNode | null;
  readonly textContent: string | null;
}

export interface XElement extends XNode {
  getAttribute(name: string): string | null;
  hasAttribute(name: string): boolean;
}

export interface XDocument extends XNode {
  readonly documentElement: XElement | null;
  getElementsByTagNameNS(ns: string, name: string): { readonly length: number; item(i: number): XElement | null };
}
