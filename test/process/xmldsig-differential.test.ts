/**
 * Differential test: our XMLDSig verdict (src/process/tsl/xmldsig.ts) equals xmlsec1's on the real
 * gematik TSLs and on copies changed in ways that must break the signature (content, signed
 * properties, signature or digest values, SignedInfo, prefixes) and in ways that must not (what
 * canonicalisation removes: attribute order and quotes, empty-element syntax, comments, character
 * references, redundant namespace declarations, line ends). xmlsec1 runs with --insecure: it checks the
 * signature with the KeyInfo certificate's key and skips trust, which is exactly xmldsig.ts's part.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { NS_DSIG, parseTslXml } from '../../src/process/tsl/xml.js';
import { verifyXmlSignature } from '../../src/process/tsl/xmldsig.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';
import { REAL_TSLS } from './real-tsls.js';

const tempDir = useTempDirs();

beforeAll(async () => {
  await requireProgram('xmlsec1', 'xmlsec1');
});

/** Replaces the first match; the variant is pointless (and the test wrong) if nothing matched. */
function sub(text: string, re: RegExp, to: string | ((m: string, ...g: string[]) => string)): string {
  const out = text.replace(re, to as string);
  if (out === text) throw new Error(`variant did not change the document: ${re}`);
  return out;
}
const flip = (c: string): string => (c === 'A' ? 'B' : 'A');

type Variant = [name: string, change: (t: string) => string, keepsSignature: boolean];
const VARIANTS: Variant[] = [
  ['as stored', (t) => t, true],
  // must break it
  ['sequence number changed', (t) => sub(t, /(<TSLSequenceNumber>\d*)(\d)</, (_, a, d) => `${a}${(Number(d) + 1) % 10}<`), false],
  ['a service name changed', (t) => sub(t, /(<ServiceName>\s*<Name xml:lang="[^"]*">)(.)/, (_, a, c) => a + flip(c)), false],
  ['XAdES SigningTime changed', (t) => sub(t, /(SigningTime>\d{3})(\d)/, (_, a, d) => `${a}${(Number(d) + 1) % 10}`), false],
  ['SignatureValue changed', (t) => sub(t, /(SignatureValue[^>]*>\s*)(.)/, (_, a, c) => a + flip(c)), false],
  ['first DigestValue changed', (t) => sub(t, /(DigestValue>\s*)(.)/, (_, a, c) => a + flip(c)), false],
  ['white space added before SchemeInformation', (t) => sub(t, /<SchemeInformation>/, ' <SchemeInformation>'), false],
  ['attribute added to the root', (t) => sub(t, /<TrustServiceStatusList /, '<TrustServiceStatusList extra="1" '), false],
  ['ds prefix renamed to dsig', (t) => t.replace(/(<\/?)ds:/g, '$1dsig:').replace(/xmlns:ds=/g, 'xmlns:dsig='), false],
  [
    'SignedProperties Reference removed',
    (t) => sub(t, /<ds:Reference [^>]*Type="http:\/\/uri\.etsi\.org\/01903#SignedProperties"[\s\S]*?<\/ds:Reference>/, ''),
    false,
  ],
  // must keep it (canonicalisation removes the difference)
  [
    'root attributes reordered, single quotes',
    (t) => sub(t, /<TrustServiceStatusList xmlns="([^"]*)" Id="([^"]*)" TSLTag="([^"]*)">/, "<TrustServiceStatusList TSLTag='$3' Id='$2' xmlns='$1'>"),
    true,
  ],
  [
    'empty element written as start and end tag',
    (t) =>
      sub(
        t,
        /<ds:DigestMethod Algorithm="([^"]*)"\s*\/>|<ds:DigestMethod Algorithm="([^"]*)"><\/ds:DigestMethod>/,
        (_m, a: string | undefined, b: string | undefined) =>
          a !== undefined ? `<ds:DigestMethod Algorithm="${a}"></ds:DigestMethod>` : `<ds:DigestMethod Algorithm="${b}"/>`,
      ),
    true,
  ],
  [
    'comment in the list and in SignedInfo',
    (t) => sub(sub(t, /<SchemeInformation>/, '<SchemeInformation><!-- note -->'), /<ds:SignedInfo>/, '<ds:SignedInfo><!-- n -->'),
    true,
  ],
  ['a letter as a character reference', (t) => sub(t, /(<TSLType>)h/, '$1&#104;'), true],
  [
    'redundant namespace declarations',
    (t) => sub(t, /<SchemeInformation>/, '<SchemeInformation xmlns="http://uri.etsi.org/02231/v2#" xmlns:unused="urn:unused">'),
    true,
  ],
  // (the lists written on one line have no line end to change)
  ['CRLF line ends', (t) => t.replace(/\n/g, '\r\n'), true],
];

async function xmlsec1(file: string): Promise<boolean> {
  const r = await execa('xmlsec1', ['--verify', '--insecure', '--enabled-key-data', 'x509', '--id-attr:Id', 'SignedProperties', file], { reject: false });
  return r.exitCode === 0;
}

function oursOk(text: string): { ok: boolean; reason?: string } {
  try {
    const tsl = parseTslXml(Buffer.from(text), 'tsl.xml');
    const sig = tsl.doc.getElementsByTagNameNS(NS_DSIG, 'Signature').item(0)!;
    const r = verifyXmlSignature(tsl.doc, sig);
    return r.ok ? { ok: true } : { ok: false, reason: r.reason };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

describe('XMLDSig verdicts equal xmlsec1 on the real TSLs and tampered copies', () => {
  for (const file of REAL_TSLS) {
    const label = `${path.basename(path.dirname(file))}/${path.basename(file)}`;
    it.skipIf(!existsSync(file))(label, async () => {
      const text = await readFile(file, 'utf8');
      const dir = await tempDir();
      const verdicts: string[] = [];
      for (const [name, change, keeps] of VARIANTS) {
        const changed = change(text);
        const copy = path.join(dir, 'copy.xml');
        await writeFile(copy, changed);
        const peer = await xmlsec1(copy);
        const mine = oursOk(changed);
        expect(mine.ok, `${label}, ${name}: xmlsec1 says ${peer ? 'valid' : 'invalid'}, we say ${mine.reason ?? 'valid'}`).toBe(peer);
        verdicts.push(`${name}: ${mine.ok}`);
        // The stored file decides what "keeps" means: a list that does not verify as stored stays invalid.
        if (keeps) expect(mine.ok, `${label}, ${name}`).toBe(oursOk(text).ok);
        else expect(mine.ok, `${label}, ${name}`).toBe(false);
      }
      expect(verdicts.length).toBe(VARIANTS.length);
    });
  }

  it('names the reason: the changed document, the changed signed properties, the signature value', async () => {
    const file = REAL_TSLS[1]!;
    if (!existsSync(file)) return;
    const text = await readFile(file, 'utf8');
    expect(oursOk(text)).toEqual({ ok: true });
    expect(oursOk(VARIANTS[1]![1](text)).reason).toMatch(/^digest of the signed document differs \(reference 1 \(URI="", Id "Reference-TSL-\d+"\)\)/);
    expect(oursOk(VARIANTS[3]![1](text)).reason).toMatch(/^digest of the signed element #SignedProperties-\d+ differs \(reference 2/);
    expect(oursOk(VARIANTS[4]![1](text)).reason).toBe("signature value does not verify with the signer's key");
    // Two elements carrying the referenced Id: refused as ambiguous (signature wrapping), not resolved to one.
    const dup = text.replace(/(<xades:SignedProperties Id="([^"]+)")/, '<xades:Extra Id="$2"/>$1');
    expect(oursOk(dup).reason).toMatch(/2 elements have Id "SignedProperties-\d+"/);
  });
});
