/** The certificates of a cabinet (TrustedTpm.cab), for tests that compare every one with OpenSSL. */
import { readFile } from 'node:fs/promises';
import { readCabinet } from '../../src/cab/index.js';

const PEM = /-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/g;

/** DER certificates of the cabinet's members, PEM members decoded, in member order. */
export async function cabinetCertificates(cab: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const { data } of readCabinet(await readFile(cab))) {
    const text = data.toString('latin1');
    if (text.includes('-----BEGIN CERTIFICATE-----')) {
      for (const m of text.matchAll(PEM)) out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
    } else if (data[0] === 0x30) out.push(data);
  }
  return out;
}
