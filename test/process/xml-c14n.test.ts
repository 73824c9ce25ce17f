/**
 * The TSL XML parser and canonicaliser against libxml2 (xmllint): the same documents are accepted and
 * refused, and canonical forms (Canonical XML 1.0 and Exclusive c14n, with comments, which is what
 * xmllint prints) are byte-identical — on tricky snippets and on the real gematik TSLs.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/process/tsl/c14n.js';
import { MAX_DEPTH, parseXml, XmlSyntaxError } from '../../src/process/tsl/xml-parser.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';
import { REAL_TSLS } from './real-tsls.js';

const tempDir = useTempDirs();

beforeAll(async () => {
  await requireProgram('xmllint', 'libxml2-utils');
});

function ours(text: string, exclusive: boolean): string {
  let s = '';
  canonicalize(parseXml(text), { exclusive, comments: true }, (c) => (s += c));
  return s;
}

async function xmllint(args: string[], text: string): Promise<{ ok: boolean; stdout: string }> {
  const file = path.join(await tempDir(), 'doc.xml');
  await writeFile(file, text);
  const r = await execa('xmllint', ['--nonet', ...args, file], { reject: false, stripFinalNewline: false });
  return { ok: r.exitCode === 0, stdout: String(r.stdout) };
}

const TRICKY = [
  // namespaces: undoing a default, re-declaring, unused declarations, prefixed attributes sorted by URI
  '<a xmlns="urn:u" b="2" a="1"><p:b xmlns:p="urn:q" xmlns:z="urn:w" z:k="1" p:k="2" k="3"/><c xmlns=""><d xmlns="urn:u"/></c><e xmlns="urn:u"/></a>',
  // PIs and comments outside the root, white space in a PI, an XML declaration
  '<?xml version="1.0" encoding="UTF-8"?>\n<?pi   data here ?>\n<!-- before --><r/><!--after--><?end?>',
  // escaping: text and attribute special characters, character references, CDATA, CR
  '<r a="&lt;&amp;&quot;&#9;&#10;&#13;>\'">t &amp; &lt; &gt; &#13; &#x1F600; "\' <![CDATA[<&>]]></r>',
  // attribute value normalisation and line ends
  '<r a="x\ty\nz">line1\r\nline2\rline3</r>',
  // xml:* attributes, nested prefixes, the same prefix bound to another URI below
  '<p:r xmlns:p="urn:a" xml:lang="de"><p:s xmlns:p="urn:b" xml:space="preserve"><q:t xmlns:q="urn:a" p:x="1"/></p:s></p:r>',
  // an empty element with only namespace declarations, deep default namespace juggling
  '<r xmlns:a="urn:a" xmlns:b="urn:b"><a:x/><b:y a:z="1"/><z xmlns="urn:d"><w xmlns=""/></z></r>',
];

const MALFORMED = [
  '<r>',
  '<r></s>',
  '<r/><s/>',
  'text<r/>',
  '<r a="1" a="2"/>',
  '<r a="<"/>',
  '<r a=1/>',
  '<r>]]></r>',
  '<r><!-- a -- b --></r>',
  '<r>&unknown;</r>',
  '<r>&amp</r>',
  '<r>&#0;</r>',
  '<r>\u0001</r>',
  '<r><?xml version="1.0"?></r>',
  '<1r/>',
  '<r a="1"b="2"/>',
];

describe('XML parser and c14n vs xmllint', () => {
  it('canonicalises tricky documents exactly as libxml2 does (inclusive and exclusive)', async () => {
    for (const doc of TRICKY) {
      for (const [flag, exclusive] of [
        ['--c14n', false],
        ['--exc-c14n', true],
      ] as const) {
        const peer = await xmllint([flag], doc);
        expect(peer.ok, `${flag} ${doc}`).toBe(true);
        expect(ours(doc, exclusive), `${flag} ${doc}`).toBe(peer.stdout);
      }
    }
  });

  it('refuses what libxml2 refuses as not well-formed', async () => {
    for (const doc of MALFORMED) {
      expect((await xmllint(['--noout'], doc)).ok, doc).toBe(false);
      expect(() => parseXml(doc), doc).toThrow(XmlSyntaxError);
    }
  });

  // libxml2 reports these namespace errors but recovers (exit 0); we refuse them, because an element or
  // attribute whose namespace is unknown or ambiguous cannot be selected or canonicalised reliably.
  it('refuses namespace errors that libxml2 only reports', async () => {
    for (const doc of ['<p:r/>', '<r xmlns:p=""/>', '<r xmlns:xml="urn:not-xml"/>', '<r xmlns:p="urn:x" xmlns:q="urn:x" p:a="1" q:a="2"/>']) {
      const file = path.join(await tempDir(), 'doc.xml');
      await writeFile(file, doc);
      expect((await execa('xmllint', ['--noout', file], { reject: false })).stderr, doc).toMatch(/namespace error/);
      expect(() => parseXml(doc), doc).toThrow(XmlSyntaxError);
    }
  });

  it(`bounds nesting at ${MAX_DEPTH} elements, as libxml2 does without XML_PARSE_HUGE`, async () => {
    const nest = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n);
    expect(() => parseXml(nest(MAX_DEPTH))).not.toThrow();
    expect(() => parseXml(nest(MAX_DEPTH + 2))).toThrow(/nested deeper than 256/);
    expect((await xmllint(['--noout'], nest(MAX_DEPTH + 2))).ok).toBe(false);
    // 100,000 levels must fail fast, not overflow the stack.
    expect(() => parseXml(nest(100_000))).toThrow(/nested deeper/);
  });

  it('refuses relative namespace URIs in canonical output, as libxml2 does', async () => {
    const doc = '<r xmlns="relative/ns"/>';
    expect((await xmllint(['--exc-c14n'], doc)).ok).toBe(false);
    expect(() => ours(doc, true)).toThrow(/relative/);
  });

  for (const file of REAL_TSLS) {
    it.skipIf(!existsSync(file))(`canonicalises the real ${path.basename(path.dirname(file))}/${path.basename(file)} exactly as libxml2 does`, async () => {
      const text = await readFile(file, 'utf8');
      for (const [flag, exclusive] of [
        ['--c14n', false],
        ['--exc-c14n', true],
      ] as const) {
        const peer = await execa('xmllint', ['--nonet', flag, file], { stripFinalNewline: false, maxBuffer: 64 << 20 });
        expect(ours(text, exclusive) === String(peer.stdout), flag).toBe(true);
      }
    });
  }
});
