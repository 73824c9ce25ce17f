/**
 * The few DOM shapes the TSL code uses, and the two XML libraries loaded untyped. Their own typings
 * pull TypeScript's whole browser "dom" library into every file of the project (@xmldom/xmldom's
 * `/// <reference lib="dom" />`), which changes the types of fetch and streams elsewhere; these local
 * interfaces keep that out.
 */
import { createRequire } from 'node:module';

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

interface XmlDom {
  DOMParser: new (options: { locator?: object; errorHandler?: Record<'warning' | 'error' | 'fatalError', (msg: string) => void> }) => {
    parseFromString(text: string, mimeType: string): XDocument;
  };
}

export interface SignedXmlInstance {
  SignatureAlgorithms: Record<string, unknown>;
  loadSignature(node: XElement): void;
  checkSignature(xml: string): boolean;
  getReferences(): { validationError?: Error }[];
}

interface XmlCrypto {
  SignedXml: new (options: { publicCert: string; getCertFromKeyInfo: () => null }) => SignedXmlInstance;
}

const require = createRequire(import.meta.url);
export const xmldom = require('@xmldom/xmldom') as XmlDom;
export const loadXmlCrypto = (): XmlCrypto => require('xml-crypto') as XmlCrypto;
